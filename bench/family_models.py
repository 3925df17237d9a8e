"""Random-weight models of every family, built by sd-scripts' own model classes and loaders.

Runs in the sd-scripts environment (KOHYA_PYTHON), with the sd-scripts checkout (KOHYA_SS_PATH) on
sys.path. Nothing here carries a config of its own: the diffusion models come from sd-scripts' model
classes and parameter sets (flux_models.configs, chroma_params, NextDiT_2B..., create_model), and the
text encoders and VAEs from sd-scripts' own loader functions, called on an empty file with
`load_state_dict` caught, so the module is exactly the one the trainer will build and fill.

Used two ways:
  * device "meta" (no memory): the integration tier compares tensor names and shapes with the pack's
    synthetic headers and gets the LoRA keys sd-scripts' networks write (`python family_models.py
    keys OUT.json`);
  * a real device (bench/gpu_families.py on a GPU machine): `save_family(family, folder)` writes
    full-size random-weight files laid out as ComfyUI keeps them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

KOHYA = Path(os.environ.get("KOHYA_SS_PATH", "")).expanduser()
for candidate in (KOHYA, KOHYA / "sd-scripts"):
    if (candidate / "train_network.py").is_file():
        sys.path.insert(0, str(candidate))
        break

import torch  # noqa: E402 (after sys.path: sd-scripts' `library` comes from the checkout)

# The file layout of each family's base model, as ComfyUI keeps it (the prefix of the DiT's tensors).
DIT_PREFIX = {"sd3": "model.diffusion_model.", "anima": "net."}
SD3_VARIANTS = {  # depth, pos_embed side, qk norm, x-blocks with a second attention (SD3Params fields)
    "medium": (24, 192, None, 0),
    "3.5-medium": (24, 384, "rms", 13),
    "3.5-large": (38, 192, "rms", 0),
}
FAMILY_VARIANTS = {
    "flux": ("dev", "schnell"),
    "chroma": ("",),
    "sd3": tuple(SD3_VARIANTS),
    "lumina2": ("",),
    "hunyuan_image": ("2.1",),
    "anima": ("",),
}


# --------------------------------------------------------------------------- modules from sd-scripts' loaders
@contextlib.contextmanager
def _empty_file(names=()):
    """A safetensors file with no weights (what a loader reads before building its module); `names`
    are one-element tensors for loaders that insist on a name being there."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "empty.safetensors"
        save_file({n: torch.zeros(1) for n in names}, str(path))
        yield str(path)


def built_by_loader(loader, *args, names=(), **kwargs) -> torch.nn.Module:
    """The module an sd-scripts loader builds, before it would fill it: load_state_dict is caught, and
    moving the still-empty (meta) module to a device is skipped."""
    built: list[torch.nn.Module] = []
    original_load, original_to = torch.nn.Module.load_state_dict, torch.nn.Module.to

    def capture(self, state_dict, strict=True, assign=False):
        built.append(self)
        return torch.nn.modules.module._IncompatibleKeys([], [])

    def meta_safe_to(self, *a, **kw):
        try:
            return original_to(self, *a, **kw)
        except NotImplementedError:  # "Cannot copy out of meta tensor": it stays on meta
            return self

    torch.nn.Module.load_state_dict, torch.nn.Module.to = capture, meta_safe_to
    try:
        with _empty_file(names) as empty:
            result = loader(empty, *args, **kwargs)
    finally:
        torch.nn.Module.load_state_dict, torch.nn.Module.to = original_load, original_to
    module = built[-1] if built else result
    return module[0] if isinstance(module, tuple) else module


def _byt5_file_name(key: str) -> str:
    return "shared.weight" if key == "embed_tokens.weight" else "encoder." + key


def _qwen25vl_file_name(key: str) -> str:
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model.") :]
    return key[len("model.") :] if key.startswith("model.visual.") else key


# Where a loader renames the file's tensors on the way in, the file holds the names before it.
FILE_NAMES = {"byt5": _byt5_file_name, "text_encoder": _qwen25vl_file_name}
# ComfyUI's files of these encoders carry a "model." prefix (sd-scripts' loaders strip it).
FILE_PREFIX = {"gemma2": "model.", "qwen3": "model."}
SMALL_PARTS = ("ae", "vae", "clip_l", "byt5", "qwen3")  # cheap enough to build for real on a CPU


def component_loaders(family: str) -> dict:
    """option -> (sd-scripts' loader, its arguments after the path, names the file must hold)."""
    from library import (
        anima_utils,
        flux_utils,
        hunyuan_image_text_encoder,
        hunyuan_image_vae,
        lumina_util,
        qwen_image_autoencoder_kl,
        sd3_utils,
    )

    bf16 = torch.bfloat16
    flux_files = {
        "clip_l": (flux_utils.load_clip_l, (bf16, "cpu"), {}),
        "t5xxl": (flux_utils.load_t5xxl, (bf16, "cpu"), {}),
        "ae": (flux_utils.load_ae, (bf16, "cpu"), {}),
    }
    return {
        "flux": flux_files,
        "chroma": {k: v for k, v in flux_files.items() if k != "clip_l"},
        "sd3": {
            "clip_l": (sd3_utils.load_clip_l, (bf16, "cpu"), {}),
            "clip_g": (sd3_utils.load_clip_g, (bf16, "cpu"), {}),
            "t5xxl": (sd3_utils.load_t5xxl, (bf16, "cpu"), {}),
        },
        "lumina2": {
            "gemma2": (lumina_util.load_gemma2, (bf16, "cpu"), {}),
            "ae": (lumina_util.load_ae, (bf16, "cpu"), {}),
        },
        "hunyuan_image": {
            "text_encoder": (hunyuan_image_text_encoder.load_qwen2_5_vl, (bf16, "cpu"), {}),
            "byt5": (
                hunyuan_image_text_encoder.load_byt5,
                (torch.float16, "cpu"),
                {"names": ("shared.weight",)},
            ),
            "vae": (hunyuan_image_vae.load_vae, ("cpu",), {}),
        },
        "anima": {
            "qwen3": (anima_utils.load_qwen3_text_encoder, (bf16, "cpu"), {}),
            "vae": (qwen_image_autoencoder_kl.load_vae, (), {"device": "cpu"}),
        },
    }.get(family, {})


def component_builders(family: str) -> dict:
    """option -> a function building that extra file's module (meta device) the way sd-scripts does."""

    def builder(loader, args, kwargs):
        return lambda: built_by_loader(loader, *args, **kwargs)

    return {option: builder(*spec) for option, spec in component_loaders(family).items()}


def check_loads(family: str, files: dict[str, str]) -> dict[str, str]:
    """Load each real (not sparse) extra file with sd-scripts' own loader: option -> "ok" or the error."""
    out = {}
    for option, (loader, args, kwargs) in component_loaders(family).items():
        path = files.get(option)
        if not path or Path(path).stat().st_blocks * 512 < Path(path).stat().st_size // 2:
            continue  # a sparse header-only file: nothing to load
        kwargs = {k: v for k, v in kwargs.items() if k != "names"}
        try:
            loader(path, *args, **kwargs)
            out[option] = "ok"
        except Exception as exc:  # the message is the result
            out[option] = f"{type(exc).__name__}: {exc}"[:300]
    return out


# --------------------------------------------------------------------------- the diffusion models
def build_dit(family: str, variant: str = "", device: str = "meta") -> torch.nn.Module:
    """The family's diffusion model from sd-scripts' classes, on `device` (meta: shapes only)."""
    from library import chroma_models, flux_models, hunyuan_image_models, lumina_models, sd3_models

    with torch.device(device):
        if family == "flux":
            return flux_models.Flux(flux_models.configs[variant or "dev"].params)
        if family == "chroma":
            return chroma_models.Chroma(chroma_models.chroma_params)
        if family == "lumina2":
            return lumina_models.NextDiT_2B_GQA_patch2_Adaln_Refiner()
        if family == "hunyuan_image":
            return hunyuan_image_models.create_model("torch", False, torch.bfloat16)
        if family == "sd3":
            depth, side, qk, attn2 = SD3_VARIANTS[variant or "3.5-large"]
            params = sd3_models.SD3Params(
                patch_size=2,
                depth=depth,
                num_patches=side * side,
                pos_embed_max_size=side,
                adm_in_channels=2048,
                qk_norm=qk,
                x_block_self_attn_layers=list(range(attn2)),
                context_embedder_in_features=4096,
                context_embedder_out_features=64 * depth,
                model_type=variant or "3.5-large",
            )
            return sd3_models.create_sd3_mmdit(params)
    if family == "anima":
        from library import anima_utils

        model = built_by_loader(
            lambda path: anima_utils.load_anima_model("cpu", path, "torch", False, "cpu", torch.bfloat16)
        )
        return model if device == "meta" else model.to_empty(device=device)
    raise ValueError(f"no sd-scripts model class for family {family!r}")


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def lora_keys(family: str, dit: torch.nn.Module) -> dict[str, list[int]]:
    """The tensors sd-scripts' network module for the family writes for `dit` (DiT part, rank 4)."""
    import importlib

    module, encoders = {
        "flux": ("networks.lora_flux", [None, None]),
        "chroma": ("networks.lora_flux", [None, None]),
        "sd3": ("networks.lora_sd3", [torch.nn.Module(), torch.nn.Module(), torch.nn.Module()]),
        "lumina2": ("networks.lora_lumina", [torch.nn.Module()]),
        "hunyuan_image": ("networks.lora_hunyuan_image", [None, None]),
        "anima": ("networks.lora_anima", [torch.nn.Module()]),
    }[family]
    net = importlib.import_module(module).create_network(1.0, 4, 4, None, encoders, dit)
    net.apply_to(encoders, dit, apply_text_encoder=False, apply_unet=True)
    return shapes(net)


# --------------------------------------------------------------------------- full-size random files
def randomize(module: torch.nn.Module, device: str, seed: int = 0) -> torch.nn.Module:
    """Give a meta module real storage on `device` with small random weights (norms at 1)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    if any(p.is_meta for p in module.parameters()):
        module = module.to_empty(device=device)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point():
                continue
            if "norm" in name or name.endswith((".scale", ".gamma")):
                tensor.fill_(1.0)
            elif name.endswith(".bias"):
                tensor.zero_()
            else:
                tensor.normal_(0.0, 0.02, generator=generator)
    return module


def save_module(
    module: torch.nn.Module, path: Path, prefix: str = "", dtype=torch.bfloat16, skip=(), rename=None
) -> Path:
    from safetensors.torch import save_file

    sd = {
        prefix + (rename(k) if rename else k): (v.to(dtype) if v.is_floating_point() else v)
        .contiguous()
        .cpu()
        for k, v in module.state_dict().items()
        if not any(s in k for s in skip)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata={"note": "random weights (lora-workbench bench)"})
    return path


def save_family(family: str, variant: str, models: Path, device: str, what: str = "all") -> dict[str, str]:
    """Write the family's files into a ComfyUI models/ folder: {"base": path, <option>: path}.
    what="all": full-size random weights (a machine with the memory for it); what="small": the
    base model as a sparse header-only file of sd-scripts' shapes, and only the small extra files
    for real (the CPU dry run)."""
    out: dict[str, str] = {}
    folder = "checkpoints" if family == "sd3" else "diffusion_models"
    base = models / folder / f"random_{family}{'_' + variant if variant else ''}.safetensors"
    prefix = DIT_PREFIX.get(family, "")
    if what == "small":
        tensors = {prefix + k: v for k, v in shapes(build_dit(family, variant, "meta")).items()}
        if family == "sd3":  # the single-file checkpoint carries its VAE
            from library import sd3_models

            with torch.device("meta"):
                vae = sd3_models.SDVAE(torch.float32, "meta")
            tensors.update({"first_stage_model." + k: v for k, v in shapes(vae).items()})
        write_sparse(tensors, base)
    else:
        dit = randomize(build_dit(family, variant, "meta" if family == "anima" else device), device)
        save_module(dit, base, prefix, skip=("pos_embedder.",))
        del dit
        if family == "sd3":  # the single-file checkpoint carries its VAE (first_stage_model.)
            _append_sd3_vae(base, device)
    out["base"] = str(base)
    for option, build in component_builders(family).items():
        if what == "small" and option not in SMALL_PARTS:  # a header of the right shapes, no data
            rename = FILE_NAMES.get(option, lambda k: k)
            names = {FILE_PREFIX.get(option, "") + rename(k): v for k, v in shapes(build()).items()}
            out[option] = str(write_sparse(names, _component_path(family, option, models)))
            continue
        out[option] = str(_save_component(family, option, build(), models, device))
    return out


def _component_path(family: str, option: str, models: Path) -> Path:
    sub = "vae" if option in ("ae", "vae") else "text_encoders"
    return models / sub / f"random_{family}_{option}.safetensors"


def _save_component(family: str, option: str, module: torch.nn.Module, models: Path, device: str) -> Path:
    module = randomize(module, device)
    path = _component_path(family, option, models)
    dtype = torch.float16 if option == "byt5" else torch.bfloat16
    save_module(module, path, FILE_PREFIX.get(option, ""), dtype=dtype, rename=FILE_NAMES.get(option))
    if option == "gemma2":  # ComfyUI reads Gemma's tokenizer from the file itself
        _add_spiece_model(path)
    return path


def _add_spiece_model(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    spm = Path(os.environ.get("LORA_WORKBENCH_GEMMA_SPM", ""))
    if not spm.is_file():
        return
    sd = load_file(str(path))
    sd["spiece_model"] = torch.frombuffer(bytearray(spm.read_bytes()), dtype=torch.uint8)
    save_file(sd, str(path))


def write_sparse(
    tensor_shapes: dict[str, list[int]], path: Path, prefix: str = "", dtype: str = "BF16"
) -> Path:
    """A full-size safetensors file of `tensor_shapes` whose data is a hole (header only on disk)."""
    header, offset = {}, 0
    for name, shape in tensor_shapes.items():
        if name.startswith("pos_embedder."):
            continue
        size = 2
        for d in shape:
            size *= d
        header[prefix + name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def _append_sd3_vae(base: Path, device: str) -> None:
    from library import sd3_models
    from safetensors.torch import load_file, save_file

    vae = randomize(sd3_models.SDVAE(torch.float32, device), device)
    sd = load_file(str(base))
    sd.update({"first_stage_model." + k: v.to(torch.bfloat16).cpu() for k, v in vae.state_dict().items()})
    save_file(sd, str(base), metadata={"note": "random weights (lora-workbench bench)"})


# --------------------------------------------------------------------------- command line
def _keys_report() -> dict:
    """Every family's DiT shapes and LoRA keys, on the meta device (for the integration tier)."""
    report: dict = {"dit": {}, "lora": {}, "components": {}}
    for family, variants in FAMILY_VARIANTS.items():
        for variant in variants:
            dit = build_dit(family, variant, "meta")
            report["dit"][f"{family}:{variant}"] = shapes(dit)
            if variant == variants[0]:
                report["lora"][family] = lora_keys(family, dit)
        for option, build in component_builders(family).items():
            rename = FILE_NAMES.get(option, lambda k: k)
            report["components"][f"{family}:{option}"] = {rename(k): v for k, v in shapes(build()).items()}
    return report


USAGE = """usage (in the sd-scripts environment):
  python family_models.py keys OUT.json
  python family_models.py save FAMILY VARIANT MODELS_DIR DEVICE all|small OUT.json
  python family_models.py check FAMILY FILES.json OUT.json"""

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "keys":
        Path(sys.argv[2]).write_text(json.dumps(_keys_report()), encoding="utf-8")
    elif len(sys.argv) == 8 and sys.argv[1] == "save":
        family, variant, models, device, what, out = sys.argv[2:]
        files = save_family(family, variant, Path(models), device, what)
        Path(out).write_text(json.dumps(files), encoding="utf-8")
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        family, files_json, out = sys.argv[2:]
        loaded = check_loads(family, json.loads(Path(files_json).read_text(encoding="utf-8")))
        Path(out).write_text(json.dumps(loaded), encoding="utf-8")
    else:
        sys.exit(USAGE)
