"""Node LoadTrainedLoRA: apply a freshly trained (or picked) LoRA to MODEL/CLIP through ComfyUI's own
loader, after checking it fits the model, and hand its trigger words on to the prompt."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..lora_workbench.errors import ValidationError
from . import _comfy

if TYPE_CHECKING:
    from ..lora_workbench.modelfiles.lora_file import LoraInfo

# lora_file (LoRA inspection) is imported where it is used, not here: ComfyUI imports every pack at
# start-up, and nothing of it is needed before a LoRA is picked or loaded.

FROM_TRAINED = "(from trained_lora)"


def _file_key(path: str) -> tuple[str, int, int]:
    """(path, mtime_ns, size): a rewritten file gets a new key, unlike the stock loader's path-only cache."""
    st = os.stat(path)
    return (path, st.st_mtime_ns, st.st_size)


def model_family(model) -> str:
    """The model's family from ComfyUI's model config class (or its latent format); "unknown" if neither
    is reachable, so an odd model object never blocks loading."""
    from ..lora_workbench.modelfiles import lora_file

    base = getattr(model, "model", None)
    config = getattr(base, "model_config", None)
    names = [c.__name__ for c in type(config).__mro__] if config is not None else []
    latent = getattr(base, "latent_format", None)
    return lora_file.model_family(names, type(latent).__name__ if latent is not None else None)


def _model_label(model) -> str:
    config = getattr(getattr(model, "model", None), "model_config", None)
    return f"the model ({type(config).__name__})" if config is not None else "the model"


def _check_whole(path: str) -> None:
    """Refuse a LoRA file cut off while it was written (a full disk, a run stopped while saving)."""
    from ..lora_workbench.modelfiles.safetensors_header import incomplete

    cut = incomplete(path)
    if cut:
        raise ValidationError(
            f"The LoRA file {path} is not whole ({cut}): it was cut off while being written (a full disk, "
            "or a run stopped while saving). Train it again, or pick another file."
        )


class LoadTrainedLoRA:
    """Apply the LoRA a KohyaLoRATrain node just trained (or one from the loras list) to MODEL and CLIP."""

    DESCRIPTION = (
        "Applies a LoRA to MODEL and CLIP through ComfyUI's own LoRA loader: the one a "
        "KohyaLoRATrain node just trained (linked), or one picked from the loras list. Checks first "
        "that the LoRA was trained for this model family (SD 1.x/2.x, SDXL, SD3, FLUX.1, Chroma, Lumina 2, "
        "HunyuanImage 2.1, Anima, Qwen-Image, Wan, Z-Image, FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5), "
        "renames sd-scripts' keys ComfyUI does not map, refuses a LoRA ComfyUI would apply to nothing "
        "(or a musubi-tuner LoRA still in musubi's own layout), reloads the file "
        "when it changes on disk, and outputs the LoRA's trigger words for your prompt."
    )
    CATEGORY = f"{_comfy.CATEGORY}/loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "STRING")
    RETURN_NAMES = ("MODEL", "CLIP", "trigger_words")
    OUTPUT_TOOLTIPS = (
        "The model with the LoRA applied.",
        "The CLIP with the LoRA's text-encoder weights applied (unchanged if it has none).",
        "The LoRA's trigger words (the dataset's class tokens), comma-separated: feed them into the prompt.",
    )

    def __init__(self):
        self.loaded: tuple[tuple[str, int, int], dict] | None = None  # (file key, state dict)
        self.inspected: tuple[tuple[str, int, int], LoraInfo] | None = None

    @classmethod
    def INPUT_TYPES(cls):
        try:
            loras = _comfy.get_filename_list("loras")
        except Exception:  # no folder_paths (outside ComfyUI): the trained_lora link still works
            loras = []
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The diffusion model to apply the LoRA to."}),
                "lora_name": (
                    [FROM_TRAINED, *loras],
                    {
                        "default": FROM_TRAINED,
                        "tooltip": f"'{FROM_TRAINED}' uses the LoRA linked into trained_lora; otherwise the file "
                        "picked here from ComfyUI's loras folders is used.",
                    },
                ),
                "epoch": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 10000,
                        "tooltip": "Which epoch's file: 0 = the final file, N = the file saved after epoch N "
                        "(<name>-00000N.safetensors).",
                    },
                ),
                "strength_model": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": -10.0,
                        "max": 10.0,
                        "step": 0.01,
                        "tooltip": "How strongly the LoRA changes the diffusion model (0 = not at all).",
                    },
                ),
                "strength_clip": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": -10.0,
                        "max": 10.0,
                        "step": 0.01,
                        "tooltip": "How strongly the LoRA changes the text encoder (0 = not at all).",
                    },
                ),
            },
            "optional": {
                "clip": ("CLIP", {"tooltip": "The text encoder; leave unconnected for model-only use."}),
                "trained_lora": (
                    "TRAINED_LORA",
                    {
                        "tooltip": "The output of a KohyaLoRATrain node: its final file (or epoch N) is loaded, "
                        "and its trigger words are passed on.",
                    },
                ),
            },
        }

    @classmethod
    def IS_CHANGED(cls, lora_name=FROM_TRAINED, epoch=0, **_kwargs):
        # Linked inputs arrive as None here; a new trained_lora re-runs this node through its upstream.
        if lora_name == FROM_TRAINED:
            return f"{FROM_TRAINED}:{epoch}"
        from ..lora_workbench.modelfiles import lora_file

        try:
            path = lora_file.epoch_file(
                _comfy.get_full_path("loras", lora_name) or lora_name, int(epoch or 0)
            )
            return "|".join(str(v) for v in _file_key(path))
        except Exception:
            return float("nan")  # let load() raise the readable error

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def resolve(lora_name: str, epoch: int, trained_lora=None) -> tuple[str, list[str]]:
        """(path, trigger words from the training run) for the chosen source and epoch."""
        from ..lora_workbench.modelfiles import lora_file

        if lora_name == FROM_TRAINED:
            if trained_lora is None:
                raise ValidationError(
                    f"lora_name is '{FROM_TRAINED}' but nothing is connected to trained_lora: "
                    "link a KohyaLoRATrain node's TRAINED_LORA output, or pick a LoRA file."
                )
            path = lora_file.epoch_file(trained_lora.path, epoch, trained_lora.epoch_paths)
            return path, list(trained_lora.trigger_words or [])
        full = _comfy.get_full_path("loras", lora_name)
        if full is None:
            raise ValidationError(
                f"The LoRA {lora_name} is not in ComfyUI's loras folders any more: "
                "refresh (R) and pick it again."
            )
        return lora_file.epoch_file(full, epoch), []

    def _info(self, path: str) -> LoraInfo:
        from ..lora_workbench.modelfiles import lora_file

        key = _file_key(path)
        if self.inspected is None or self.inspected[0] != key:
            _check_whole(path)
            self.inspected = (key, lora_file.inspect(path))
        return self.inspected[1]

    def _state_dict(self, path: str) -> dict:
        key = _file_key(path)
        if self.loaded is None or self.loaded[0] != key:
            self.loaded = None  # free the old file before reading the new one
            self.loaded = (key, _comfy.load_torch_file(path))
        return self.loaded[1]

    @staticmethod
    def _key_map(model, clip) -> dict:
        """ComfyUI's LoRA key map for the sides the LoRA goes to; {} for an odd MODEL/CLIP object (then
        the LoRA loads as is and ComfyUI reports what it skips)."""
        try:
            return _comfy.lora_key_map(model, clip)
        except Exception as exc:
            _comfy.log.debug("lora-workbench: no LoRA key map: %s", exc)
            return {}

    @staticmethod
    def _aligned(sd: dict, key_map: dict, family: str) -> dict:
        """The state dict with sd-scripts' names ComfyUI does not map renamed to ones it does
        (HunyuanImage's fc1/mod_linear, Lumina/Anima text-encoder LoRAs); unchanged if none."""
        from ..lora_workbench.modelfiles import lora_file

        renames = lora_file.align_keys(sd.keys(), key_map, family) if key_map else {}
        if not renames:
            return sd
        return {renames.get(k, k): v for k, v in sd.items()}

    @staticmethod
    def _check_placed(sd: dict, key_map: dict, info: LoraInfo) -> None:
        """Refuse a LoRA ComfyUI would apply to nothing, or a musubi-tuner LoRA it would apply only in
        part (musubi's own layout of a family ComfyUI needs converted), before it silently does so."""
        from ..lora_workbench.modelfiles import lora_file, lora_keys
        from ..lora_workbench.training.backends.musubi import outputs

        if not key_map:  # no map to judge by (an odd MODEL object)
            return
        keys = [k for k in _comfy.convert_lora(sd) if not lora_file.is_te_key(k)]
        total, unmapped = lora_keys.unmapped_modules(keys, key_map)
        hint = outputs.convert_hint(info.arch, info.path)
        problem = lora_keys.coverage_problem(os.path.basename(info.path), info.arch, total, unmapped, hint)
        if problem:
            raise ValidationError(problem)

    # ------------------------------------------------------------------ run
    def load(self, model, lora_name, epoch, strength_model, strength_clip, clip=None, trained_lora=None):
        from ..lora_workbench.modelfiles import lora_file

        path, words = self.resolve(lora_name, int(epoch), trained_lora)
        if not os.path.isfile(path):
            raise ValidationError(f"The LoRA file {path} does not exist (was it moved or deleted?).")
        info = self._info(path)
        trigger = ", ".join(words or info.trigger_words)

        use_clip = clip is not None and strength_clip != 0
        if strength_model == 0 and not use_clip:
            return (model, clip, trigger)
        if strength_model != 0:
            lora_file.check_compatible(info, model_family(model), _model_label(model))

        sd = self._state_dict(path)
        if not use_clip:  # model-only: drop the text-encoder keys, or ComfyUI warns once per key
            sd = {k: v for k, v in sd.items() if not lora_file.is_te_key(k)}
        elif strength_model == 0:  # clip-only: keep the UNet keys away from a key map without them
            sd = {k: v for k, v in sd.items() if lora_file.is_te_key(k)}
        on_model, on_clip = (model if strength_model != 0 else None), (clip if use_clip else None)
        key_map = self._key_map(on_model, on_clip)
        sd = self._aligned(sd, key_map, info.arch)
        if on_model is not None:
            self._check_placed(sd, key_map, info)
        new_model, new_clip = _comfy.load_lora_for_models(
            on_model,
            on_clip,
            sd,
            strength_model,
            strength_clip if use_clip else 0.0,
        )
        return (new_model if strength_model != 0 else model, new_clip if use_clip else clip, trigger)


NODE_CLASS_MAPPINGS = {"LoadTrainedLoRA": LoadTrainedLoRA}
NODE_DISPLAY_NAME_MAPPINGS = {"LoadTrainedLoRA": "Load Trained LoRA"}
