"""kohya_ss GUI configs (its presets/lora/*.json and the JSON it saves beside a run) as training settings.

The GUI keeps one flat JSON object of its widget values. `import_config` goes through every key and
says what became of it: **used** (a setting of the same name and meaning took the value), **mapped**
(it became a setting of another name, unit or form: LoRA_type -> network_type, max_resolution ->
width/height, lr_warmup % -> lr_warmup_ratio, LyCORIS options -> network_args, ...) or **skipped**,
with the reason (empty, not a setting here, a path, a family this pack does not train yet, or a
value the setting refuses). Every value goes through the setting's own checks; nothing from the file
reaches sd-scripts except as a checked setting (no paths are followed, free text is not passed on).

The file is untrusted: read with a size cap, it must be one JSON object.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import numbers, paths
from ..errors import ValidationError
from . import kvargs
from .options import coerce
from .settings import SETTING
from .validation import check_setting

MAX_BYTES = 1 << 20

# GUI LoRA_type -> network_type (the GUI's "LoCon" is LyCORIS' locon, "Kohya LoCon" sd-scripts' own).
LORA_TYPES = {
    "Standard": "lora",
    "Kohya LoCon": "locon",
    "Kohya DyLoRA": "dylora",
    "LoCon": "lycoris_locon",
    "LyCORIS/LoCon": "lycoris_locon",
    "LyCORIS/LoHa": "lycoris_loha",
    "LyCORIS/LoKr": "lycoris_lokr",
    "LyCORIS/iA3": "lycoris_ia3",
    "LyCORIS/DyLoRA": "lycoris_dylora",
    "LyCORIS/GLoRA": "lycoris_glora",
    "LyCORIS/Diag-OFT": "lycoris_diag_oft",
    "LyCORIS/BOFT": "lycoris_boft",
    "LyCORIS/Native Fine-Tuning": "lycoris_full",
}
# GUI keys that are our settings by the same name and meaning.
SAME_NAME = (
    "network_dim", "network_alpha", "learning_rate", "unet_lr", "text_encoder_lr", "seed",
    "save_every_n_epochs", "save_precision", "mixed_precision", "gradient_checkpointing", "cache_latents",
    "cache_latents_to_disk", "caption_extension", "min_bucket_reso", "max_bucket_reso", "shuffle_caption",
    "keep_tokens", "caption_dropout_rate", "caption_dropout_every_n_epochs", "caption_tag_dropout_rate",
    "flip_aug", "color_aug", "random_crop", "min_snr_gamma", "scale_weight_norms", "max_grad_norm",
    "gradient_accumulation_steps", "network_dropout", "rank_dropout", "module_dropout", "v_parameterization",
    "max_train_steps", "sample_sampler", "sample_prompts", "sample_every_n_epochs", "save_state",
    "save_state_on_train_end", "save_last_n_epochs", "save_last_n_epochs_state", "dim_from_weights",
    "output_name", "num_processes", "num_machines", "gpu_ids", "main_process_port", "lowram",
    "lr_scheduler_num_cycles", "lr_scheduler_power", "lr_warmup_steps", "clip_skip",
    "multires_noise_iterations", "multires_noise_discount",
)  # fmt: skip
# LyCORIS options the GUI keeps as its own widgets -> network_args keys (and LyCORIS' defaults).
LYCORIS_OPTIONS = {
    "use_tucker": ("use_tucker", "False"),
    "use_cp": ("use_tucker", "False"),
    "use_scalar": ("use_scalar", "False"),
    "train_norm": ("train_norm", "False"),
    "bypass_mode": ("bypass_mode", "False"),
    "dora_wd": ("dora_wd", "False"),
    "factor": ("factor", "-1"),
    "decompose_both": ("decompose_both", "False"),
    "constrain": ("constraint", "0.0"),
    "rescaled": ("rescaled", "False"),
    "LyCORIS_preset": ("preset", "full"),
}
LORA_PLUS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
BLOCK_ARGS = (
    "block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas", "down_lr_weight", "mid_lr_weight",
    "up_lr_weight", "block_lr_zero_threshold",
)  # fmt: skip
_PATH = "a path in the config is never followed; the workflow (or the CLI) gives files and folders"
_FAMILY = "FLUX.1/SD3/other families are not trained by this pack yet"
# Known GUI keys that have no setting here, and why.
SKIP_REASONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "pretrained_model_name_or_path",
            "train_data_dir",
            "reg_data_dir",
            "output_dir",
            "logging_dir",
            "dataset_config",
            "vae",
            "network_weights",
            "lora_network_weights",
            "resume",
            "log_tracker_config",
            "ae",
            "clip_l",
            "clip_g",
            "t5xxl",
        ),
        _PATH,
    ),
    **dict.fromkeys(
        (
            "flux1_checkbox",
            "flux1_cache_text_encoder_outputs",
            "flux1_cache_text_encoder_outputs_to_disk",
            "t5xxl_max_token_length",
            "apply_t5_attn_mask",
            "guidance_scale",
            "discrete_flow_shift",
            "timestep_sampling",
            "model_prediction_type",
            "split_mode",
            "train_blocks",
            "fp8_base",
            "fp8_base_unet",
            "mem_eff_save",
            "sd3_checkbox",
            "blocks_to_swap",
        ),
        _FAMILY,
    ),
    "sdxl": "the base model decides the family and script (read from the checkpoint)",
    "v2": "the base model decides SD 2.x (read from the checkpoint)",
    "model_list": "the workflow picks the base model",
    "sdxl_no_half_vae": "set automatically for SDXL in fp16",
    "sdxl_cache_text_encoder_outputs": "text-encoder output caching is not a setting here yet",
    "bucket_no_upscale": "always on with buckets here",
    "bucket_reso_steps": "buckets step by 64 here",
    "persistent_data_loader_workers": "set automatically when data_loader_workers > 0",
    "multi_gpu": "follows from num_processes > 1 on a GPU",
    "save_model_as": "always safetensors here",
    "mem_eff_attn": "use attention sdpa (the default) instead",
    "full_fp16": "not offered here (use mixed_precision)",
    "full_bf16": "not offered here (use mixed_precision)",
    "training_comment": "metadata text is not a setting here",
    "log_with": "TensorBoard logs go to PROJECT/logs (the tensorboard setting); wandb is not offered",
    "wandb_api_key": "wandb is not offered (TensorBoard logs go to PROJECT/logs)",
    "wandb_run_name": "wandb is not offered (TensorBoard logs go to PROJECT/logs)",
    "log_tracker_name": "TensorBoard runs are named after the run folder",
    "log_config": "not offered here",
    "save_every_n_steps": "per-step saving is not a setting here (save_every_n_epochs is)",
    "save_last_n_steps": "per-step saving is not a setting here",
    "save_last_n_steps_state": "per-step states are not a setting here (save_last_n_epochs_state is)",
    "save_state_to_huggingface": "uploads are not done by this pack",
    "resume_from_huggingface": "uploads are not done by this pack",
    "async_upload": "uploads are not done by this pack",
    "save_as_bool": "GUI-only",
    "stop_text_encoder_training": "not offered here",
    "stop_text_encoder_training_pct": "not offered here",
    "rank_dropout_scale": "LyCORIS 4 does not read it",
    "train_on_input": "LyCORIS 4 does not read it (its ia3 preset sets it)",
    "unit": "only DyLoRA reads it",
    "conv_dims": "GUI-only",
    "conv_alphas": "GUI-only",
    "dynamo_backend": "accelerate runs with dynamo off here",
    "dynamo_mode": "accelerate runs with dynamo off here",
    "dynamo_use_dynamic": "accelerate runs with dynamo off here",
    "dynamo_use_fullgraph": "accelerate runs with dynamo off here",
    "extra_accelerate_launch_args": "free command-line text is never passed to accelerate",
    "lr_scheduler_args": "free scheduler arguments are not offered",
    "lr_scheduler_type": "custom scheduler classes are not offered",
    "epoch": "max_train_epochs gives the epochs",
    "noise_offset_type": "decides between noise_offset and multires noise (see those keys)",
    "highvram": "not offered here",
    "lowvram": "not offered here",
    "sample_every_n_steps": "samples are made every N epochs here",
}
_PREFIX_SKIPS = (
    ("huggingface_", "uploads are not done by this pack"),
    ("metadata_", "model metadata is not a setting here"),
)


@dataclass
class GuiImport:
    """Settings from one GUI config and what became of each of its keys."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    used: list[tuple[str, str]] = field(default_factory=list)  # (gui key, "setting = value")
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (gui key, "setting = value ...")
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (gui key, why)
    notes: list[str] = field(default_factory=list)  # about the config as a whole

    def counts(self) -> tuple[int, int, int]:
        return len(self.used), len(self.mapped), len(self.skipped)

    def report(self) -> str:
        """What the import did, one line per key: for the node's text output and the CLI."""
        used, mapped, skipped = self.counts()
        lines = [f"kohya_ss config {self.source}: {used} used, {mapped} mapped, {skipped} skipped"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  used    {key}: {what}" for key, what in self.used]
        lines += [f"  mapped  {key}: {what}" for key, what in self.mapped]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped]
        return "\n".join(lines)


class _Importer:
    """One pass over a GUI config; each step takes the keys it understands."""

    def __init__(self, data: Mapping[str, Any], source: str):
        self.data = dict(data)
        self.out = GuiImport(source)
        self.done: set[str] = set()

    # ---------------------------------------------------------------- helpers
    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def skip(self, key: str, why: str) -> None:
        if key in self.data and key not in self.done:
            self.done.add(key)
            self.out.skipped.append((key, why))

    def take(self, key: str, setting: str, value: Any, *, mapped: bool = False, note: str = "") -> bool:
        """Give `setting` the value of GUI `key` if its checks pass (else skip the key, saying why)."""
        return self.take_all(key, {setting: value}, mapped=mapped, note=note)

    def take_all(self, key: str, values: Mapping[str, Any], *, mapped: bool = True, note: str = "") -> bool:
        """Give several settings their values from one GUI key, all or none."""
        try:
            converted = {name: _convert(name, v) for name, v in values.items()}
            for name, v in converted.items():
                check_setting(SETTING[name], v)
        except (ValueError, ValidationError) as exc:
            self.skip(key, str(exc))
            return False
        self.out.values.update(converted)
        if key not in self.done:
            self.done.add(key)
            what = ", ".join(f"{name} = {v!r}" for name, v in converted.items())
            (self.out.mapped if mapped else self.out.used).append(
                (key, what + (f" ({note})" if note else ""))
            )
        return True

    def values_set(self, setting: str, value: Any) -> None:
        self.out.values[setting] = value

    def empty(self, key: str) -> bool:
        """True (and the key skipped) when the GUI left it blank."""
        value = self.raw(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.skip(key, "empty in the config")
            return True
        return False

    # ---------------------------------------------------------------- steps
    def run(self) -> GuiImport:
        for step in (
            self.network,
            self.lycoris_options,
            self.network_extras,
            self.optimizer,
            self.schedule,
            self.size_and_epochs,
            self.noise,
            self.text_encoder,
            self.runtime,
            self.additional_parameters,
            self.same_name,
        ):
            step()
        for key in self.data:
            self.skip(key, self._reason(key))
        return self.out

    def _reason(self, key: str) -> str:
        if key in SKIP_REASONS:
            return SKIP_REASONS[key]
        for prefix, why in _PREFIX_SKIPS:
            if key.startswith(prefix):
                return why
        return "no setting of this name here"

    def network(self) -> None:
        kind = self.raw("LoRA_type")
        if kind is None:
            return
        net = LORA_TYPES.get(str(kind))
        if net is None:
            self.skip(
                "LoRA_type", f"{kind} is not trained by this pack (LoRA, LoCon, DyLoRA and LyCORIS are)"
            )
            self.out.notes.append(
                f"this config is for {kind} training; only the settings that also apply here were taken"
            )
            return
        self.take("LoRA_type", "network_type", net, mapped=True)
        conv = self.raw("conv_dim")
        if net in kvargs.CONV_TYPES and _number(conv):
            if net == "dylora" and int(_float(conv) or 0) != int(_float(self.raw("network_dim")) or 0):
                self.skip("conv_dim", "DyLoRA needs conv_dim equal to network_dim; left off")
                self.skip("conv_alpha", "with conv_dim")
            elif self.take("conv_dim", "conv_dim", conv, mapped=True, note="network_args conv_dim"):
                self.take(
                    "conv_alpha",
                    "conv_alpha",
                    self.raw("conv_alpha"),
                    mapped=True,
                    note="network_args conv_alpha",
                )
            else:
                self.skip("conv_alpha", "with conv_dim, which was skipped")
        for key in ("conv_dim", "conv_alpha"):
            self.skip(
                key, f"{kind} does not train conv layers" if net not in kvargs.CONV_TYPES else "0 = off"
            )
        if net in kvargs.DYLORA_TYPES and _number(self.raw("unit")):
            self.take("unit", "dylora_unit", self.raw("unit"), mapped=True)

    def lycoris_options(self) -> None:
        net = self.out.values.get("network_type", "lora")
        pairs = []
        for key, (arg, default) in LYCORIS_OPTIONS.items():
            if key not in self.data or self.empty(key):
                continue
            applies = kvargs.NETWORK_ARGS[arg].applies
            if net not in applies:
                readers = (
                    "the LyCORIS network types" if applies == kvargs.LYCORIS_TYPES else "/".join(applies)
                )
                self.skip(key, f"only {readers} read it (network_type is {net})")
                continue
            try:
                value = kvargs.canonical(kvargs.NETWORK_ARGS[arg], str(self.raw(key)))
            except ValueError as exc:
                self.skip(key, f"{arg} must be {exc}")
                continue
            if value == default:
                self.done.add(key)
                self.out.mapped.append(
                    (key, f"network_args {arg}={value} (LyCORIS' default; nothing written)")
                )
            else:
                pairs.append((key, f"{arg}={value}"))
        self._add_network_args(pairs)

    def network_extras(self) -> None:
        net = self.out.values.get("network_type", "lora")
        pairs = []
        for key in (*LORA_PLUS, *BLOCK_ARGS):
            if key not in self.data or self.empty(key):
                continue
            if key in LORA_PLUS and not _number(self.raw(key)):
                self.skip(key, "0 = off")
                continue
            if net not in kvargs.NETWORK_ARGS[key].applies:
                self.skip(key, f"network_type {net} does not read it")
                continue
            pairs.append((key, f"{key}={str(self.raw(key)).replace(' ', '')}"))
        self._add_network_args(pairs)

    def _add_network_args(self, pairs: list[tuple[str, str]]) -> None:
        net = self.out.values.get("network_type", "lora")
        current = self.out.values.get("network_args", "")
        for key, pair in pairs:
            text = f"{current} {pair}".strip()
            try:
                kvargs.network_args(text, net)
            except ValidationError as exc:
                self.skip(key, str(exc))
                continue
            current = text
            self.done.add(key)
            self.out.mapped.append((key, f"network_args {pair}"))
        if current:
            self.values_set("network_args", current)

    def optimizer(self) -> None:
        if self.empty("optimizer") if "optimizer" in self.data else True:
            return
        if not self.take("optimizer", "optimizer", self.raw("optimizer")):
            return
        if "optimizer_args" not in self.data or self.empty("optimizer_args"):
            return
        opt = self.out.values["optimizer"]
        kept, dropped = [], []
        try:
            pairs = kvargs.split_pairs(str(self.raw("optimizer_args")), "optimizer_args")
        except ValidationError as exc:
            self.skip("optimizer_args", str(exc))
            return
        for key, value in pairs:
            try:
                kept += kvargs.optimizer_args(f"{key}={value}", opt)
            except ValidationError as exc:
                dropped.append(f"{key}={value} ({exc})")
        if kept:
            self.take("optimizer_args", "optimizer_args", " ".join(kept))
        for item in dropped:
            self.out.skipped.append(("optimizer_args", f"dropped {item}"))
        self.done.add("optimizer_args")

    def schedule(self) -> None:
        if "lr_scheduler" in self.data and not self.empty("lr_scheduler"):
            self.take("lr_scheduler", "lr_scheduler", self.raw("lr_scheduler"))
        warmup = self.raw("lr_warmup")
        if warmup is None or self.empty("lr_warmup"):
            return
        if not _number(warmup):
            self.skip("lr_warmup", "0 = no warmup")
        elif self.out.values.get("lr_scheduler") == "constant":
            self.skip("lr_warmup", "the constant scheduler takes no warmup (sd-scripts would refuse it)")
        else:
            self.take(
                "lr_warmup",
                "lr_warmup_ratio",
                (_float(warmup) or 0) / 100,
                mapped=True,
                note=f"{warmup}% of the steps",
            )

    def size_and_epochs(self) -> None:
        res = self.raw("max_resolution")
        if res is not None and not self.empty("max_resolution"):
            parts = [p.strip() for p in str(res).split(",")]
            w, h = (parts * 2)[:2] if len(parts) in (1, 2) else ("", "")
            step = 8 if _truthy(self.raw("enable_bucket")) else 64
            sizes, notes = {}, []
            for name, text in (("width", w), ("height", h)):
                value = int(_float(text) or 0) if _number(text) else text
                if isinstance(value, int) and value % step:
                    notes.append(f"{name} {value} rounded down to a multiple of {step}, as sd-scripts needs")
                    value -= value % step
                sizes[name] = value
            self.take_all("max_resolution", sizes, note="; ".join(notes))
        epochs_key = "max_train_epochs" if _number(self.raw("max_train_epochs")) else "epoch"
        if _number(self.raw(epochs_key)):
            self.take(epochs_key, "epochs", self.raw(epochs_key), mapped=epochs_key == "epoch")
        self.skip("max_train_epochs", "empty or 0 in the config")
        if "train_batch_size" in self.data and not self.empty("train_batch_size"):
            self.take("train_batch_size", "batch_size", self.raw("train_batch_size"), mapped=True)
        if "enable_bucket" in self.data:
            self.take(
                "enable_bucket", "buckets", "on" if _truthy(self.raw("enable_bucket")) else "off", mapped=True
            )

    def noise(self) -> None:
        kind = str(self.raw("noise_offset_type") or "Original")
        if kind == "Multires":
            self.skip("noise_offset", "noise_offset_type is Multires")
        else:
            for key in ("multires_noise_iterations", "multires_noise_discount"):
                self.skip(key, "noise_offset_type is Original")
        if "noise_offset" in self.data and kind != "Multires" and not self.empty("noise_offset"):
            self.take("noise_offset", "noise_offset", self.raw("noise_offset"))
        if kind == "Multires" and not _number(self.raw("multires_noise_iterations")):
            self.skip("multires_noise_discount", "no multires iterations")

    def text_encoder(self) -> None:
        lr = self.raw("text_encoder_lr")
        if lr not in ("", None) and _is_zero(lr):
            self.take("text_encoder_lr", "train_text_encoder", False, mapped=True, note="text_encoder_lr 0")
        clip = self.raw("clip_skip")
        if clip is not None and not self.empty("clip_skip"):
            if _truthy(self.raw("sdxl")):
                self.skip("clip_skip", "SDXL does not use clip_skip")
            elif str(clip).strip() in ("0", "1"):
                self.skip("clip_skip", "1 = the last layer, sd-scripts' default (clip_skip 0 here)")

    def runtime(self) -> None:
        attn = self.raw("xformers")
        if attn is not None:
            name = {"True": "xformers", "False": "none", "none": "none"}.get(str(attn), str(attn))
            self.take("xformers", "attention", name, mapped=True)
        for gui, ours in (
            ("max_data_loader_n_workers", "data_loader_workers"),
            ("num_cpu_threads_per_process", "cpu_threads"),
        ):
            if gui in self.data and not self.empty(gui):
                self.take(gui, ours, self.raw(gui), mapped=True)

    def additional_parameters(self) -> None:
        text = self.raw("additional_parameters")
        if text is None or self.empty("additional_parameters"):
            return
        try:
            words = shlex.split(str(text))
        except ValueError as exc:
            self.skip("additional_parameters", f"not readable ({exc}); free text is never passed on")
            return
        self.done.add("additional_parameters")
        for flag, value in _flags(words):
            where = f"additional_parameters {flag}"
            if flag == "network_train_unet_only":
                self._take_flag(where, "train_text_encoder", False)
            elif flag in ("max_grad_norm", "min_snr_gamma", "scale_weight_norms", "clip_skip", "keep_tokens"):
                self._take_flag(where, flag, value)
            else:
                self.out.skipped.append(
                    (where, "free command-line text is never passed on; no setting of this name")
                )

    def _take_flag(self, where: str, setting: str, value: Any) -> None:
        self.data[where] = value
        self.take(where, setting, value, mapped=True)

    def same_name(self) -> None:
        if _truthy(self.raw("dim_from_weights")):
            self.skip("dim_from_weights", "needs network_weights, and the config's path is not followed")
        for key in SAME_NAME:
            if key in self.data and key not in self.done and not self.empty(key):
                self.take(key, key, self.raw(key))


def _flags(words: list[str]) -> list[tuple[str, Any]]:
    """(option, value or True) pairs of a command-line word list."""
    out, i = [], 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            out.append((word, True))
            i += 1
            continue
        name, eq, value = word[2:].partition("=")
        if not eq and i + 1 < len(words) and not words[i + 1].startswith("--"):
            value, i = words[i + 1], i + 1
        out.append((name, value if (eq or value) else True))
        i += 1
    return out


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


def _float(value: Any) -> float | None:
    """A GUI number (or numeric text) as a float; None for anything else, and for a literal a float
    does not hold as written (1e400, 1e-400): taking the key then says why (_convert)."""
    try:
        return numbers.parse_float(str(value).strip())
    except ValueError:
        return None


def _is_zero(value: Any) -> bool:
    return _float(value) == 0


def _number(value: Any) -> bool:
    """True for a non-zero number (or numeric text); False for 0; None-ish text is False too."""
    return _float(value) not in (None, 0)


def _convert(setting: str, value: Any) -> Any:
    """A GUI value as the setting's type ("1" -> 1, "0.0001" -> 1e-4, "True" -> True)."""
    kind = SETTING[setting].type
    if isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{setting} must be true or false, not {value!r}")
            return text.lower() == "true"
        if kind in (int, float):
            try:
                value = numbers.parse_float(text)
            except numbers.OutOfRange as exc:
                raise ValueError(f"{setting} must be a number a float holds: {exc}") from None
            except ValueError:
                raise ValueError(f"{setting} must be a number, not {value!r}") from None
        else:
            return text
    return coerce(setting, value)


# --------------------------------------------------------------------------- entry points
def import_config(data: Mapping[str, Any], source: str = "config") -> GuiImport:
    """What a GUI config (a parsed JSON object) gives as settings, and what became of each key."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"The kohya_ss config {source} is not a JSON object.")
    return _Importer(data, source).run()


def load_json(path: str | os.PathLike, confined: bool = False) -> dict:
    """A GUI config file: at most 1 MiB of JSON holding one object; a sentence otherwise. `confined` (a
    workflow): opened inside the allowed roots without following a link, parsed from what was opened."""
    p = Path(path)
    try:
        data = paths.read_json(p, what="kohya_ss config", limit=MAX_BYTES, confined=confined)
    except FileNotFoundError:
        raise ValidationError(f"The kohya_ss config {p} does not exist.") from None
    except OSError as exc:
        raise ValidationError(f"Cannot read the kohya_ss config {p}: {exc.strerror or exc}.") from None
    if not isinstance(data, dict):
        raise ValidationError(f"The kohya_ss config {p} must hold one JSON object (the GUI's settings).")
    return data


def import_file(path: str | os.PathLike, confined: bool = False) -> GuiImport:
    return import_config(load_json(path, confined), Path(path).name)


def presets(folder: str | os.PathLike | None) -> dict[str, Path]:
    """{name: file} of the GUI's LoRA presets in a kohya_ss checkout (presets/lora and its user_presets)."""
    if folder is None:
        return {}
    found: dict[str, Path] = {}
    for sub in ("presets/lora", "presets/lora/user_presets"):
        base = Path(folder) / sub
        if base.is_dir():
            for f in sorted(base.glob("*.json")):
                if f.is_file() and not f.is_symlink():
                    found.setdefault(f.stem if sub.endswith("lora") else f"user_presets/{f.stem}", f)
    return found
