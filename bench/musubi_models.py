"""Full-size random-weight model files for musubi-tuner's families, built from musubi's own loaders.

Runs in musubi-tuner's environment (MUSUBI_PYTHON, musubi installed or MUSUBI_TUNER_PATH/src on
sys.path). Nothing here declares a shape: each part (DiT, VAE, text encoder) is the module musubi's
own loader function builds, caught at its `load_state_dict` while it reads an empty file, so the
tensor names and shapes are exactly the ones the trainer will ask for.

Files are written tensor by tensor (the header first, then each tensor made and written alone), so a
5.7B-parameter UMT5-XXL costs one tensor of memory, not the model:
  * mode "sparse": the header and a hole of the full size (detection checks; costs no disk);
  * mode "real": small random weights, made on DEVICE ("cuda" on the GPU box, "cpu" here).

    python musubi_models.py save FAMILY VARIANT MODELS_DIR DEVICE real|sparse OUT.json [REAL_PARTS [FP32_PARTS]]
    python musubi_models.py parts            # every family's parts, parameter counts (meta device)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MUSUBI = Path(os.environ.get("MUSUBI_TUNER_PATH", "")).expanduser()
if (MUSUBI / "src" / "musubi_tuner").is_dir():
    sys.path.insert(0, str(MUSUBI / "src"))

import torch  # noqa: E402

if not torch.cuda.is_available():  # wan/modules/t5.py evaluates torch.cuda.current_device() at import
    torch.cuda.current_device = lambda: 0

BF16 = torch.bfloat16
QWEN3_NAMES = ("model.embed_tokens.weight",)


# --------------------------------------------------------------------------- modules from musubi's loaders
@contextlib.contextmanager
def _empty_file(names=()):
    """A safetensors file with no weights; `names` are one-element tensors for loaders that read a
    name before they build (Qwen3's tied embedding)."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "empty.safetensors"
        save_file({n: torch.zeros(1) for n in names}, str(path))
        yield str(path)


class _Built(Exception):
    """Raised at the loader's load_state_dict: the module is built, nothing after it is needed."""

    def __init__(self, module: torch.nn.Module):
        super().__init__("built")
        self.module = module


def built_by_loader(loader: Callable, *args, names=(), **kwargs) -> torch.nn.Module:
    """The module a musubi loader builds, caught where it would fill it from the (empty) file; the
    loader stops there (no tokenizer, no device move)."""
    original_load = torch.nn.Module.load_state_dict

    def capture(self, state_dict, strict=True, assign=False):
        raise _Built(self)

    torch.nn.Module.load_state_dict = capture
    try:
        with _empty_file(names) as empty, torch.device("meta"):
            loader(empty, *args, **kwargs)
    except _Built as built:
        return built.module
    finally:
        torch.nn.Module.load_state_dict = original_load
    raise RuntimeError(f"{loader} built no module through load_state_dict")


@dataclass(frozen=True)
class Part:
    """One file of a family: where ComfyUI keeps it, its file name, how musubi builds its module, and
    the prefix ComfyUI's repackaged file puts before musubi's tensor names."""

    folder: str
    name: str
    build: Callable[[], torch.nn.Module]
    prefix: str = ""
    skip: tuple[str, ...] = ()  # tensors the file does not hold (Qwen3's lm_head is tied)


def _wan_parts(variant: str) -> dict[str, Part]:
    from musubi_tuner.wan.configs import WAN_CONFIGS
    from musubi_tuner.wan.modules.model import load_wan_model
    from musubi_tuner.wan.modules.t5 import umt5_xxl
    from musubi_tuner.wan.modules.vae import _video_vae

    task = variant or "t2v-1.3B"
    config = WAN_CONFIGS[task]

    def t5() -> torch.nn.Module:
        with torch.device("meta"):
            return umt5_xxl(encoder_only=True, return_tokenizer=False)

    def dit() -> torch.nn.Module:
        return built_by_loader(lambda p: load_wan_model(config, "cpu", p, "torch", False, "cpu", BF16))

    # ComfyUI's repackaged 1.3B file keeps the "model.diffusion_model." prefix (musubi strips it)
    prefix = "model.diffusion_model." if "1.3B" in task else ""
    return {
        "dit": Part("diffusion_models", f"random_wan2.1_{task}_bf16.safetensors", dit, prefix),
        "vae": Part(
            "vae",
            "random_wan_2.1_vae.safetensors",
            lambda: built_by_loader(lambda p: _video_vae(p, z_dim=16)),
        ),
        "t5": Part("text_encoders", "random_models_t5_umt5-xxl-enc-bf16.safetensors", t5),
    }


def _zimage_parts(variant: str) -> dict[str, Part]:
    from musubi_tuner.zimage import zimage_autoencoder, zimage_model, zimage_utils

    return {
        "dit": Part(
            "diffusion_models",
            "random_z_image_bf16.safetensors",
            lambda: zimage_model.create_model("torch", False, BF16),
        ),
        "vae": Part(
            "vae",
            "random_z_image_ae.safetensors",
            lambda: built_by_loader(zimage_autoencoder.load_autoencoder_kl),
        ),
        "text_encoder": Part(
            "text_encoders",
            "random_qwen_3_4b.safetensors",
            lambda: built_by_loader(lambda p: zimage_utils.load_qwen3(p, BF16, "cpu")[1], names=QWEN3_NAMES),
            skip=("lm_head.weight",),
        ),
    }


def _flux2_parts(variant: str) -> dict[str, Part]:
    from musubi_tuner.flux_2 import flux2_utils

    info = flux2_utils.FLUX2_MODEL_INFO[variant or "klein-4b"]
    is_8b = info.qwen_variant == "8B"

    def dit() -> torch.nn.Module:
        return built_by_loader(
            lambda p: flux2_utils.load_flow_model("cpu", info, p, "torch", False, "cpu", BF16)
        )

    def te() -> torch.nn.Module:
        from musubi_tuner.zimage import zimage_utils

        return built_by_loader(
            lambda p: zimage_utils.load_qwen3(p, BF16, "cpu", is_8b=is_8b)[1], names=QWEN3_NAMES
        )

    te_name = "random_qwen_3_8b.safetensors" if is_8b else "random_qwen_3_4b.safetensors"
    parts = {
        "dit": Part("diffusion_models", f"random_flux2_{variant or 'klein-4b'}.safetensors", dit),
        "vae": Part(
            "vae",
            "random_flux2_ae.safetensors",
            lambda: built_by_loader(lambda p: flux2_utils.load_ae(p, BF16, "cpu")),
        ),
    }
    if info.qwen_variant is not None:  # dev's Mistral Small 3.1 (24B) is not built here
        parts["text_encoder"] = Part("text_encoders", te_name, te, skip=("lm_head.weight",))
    return parts


def _qwen_image_parts(variant: str) -> dict[str, Part]:
    from musubi_tuner.qwen_image import qwen_image_model, qwen_image_utils

    def dit() -> torch.nn.Module:
        return built_by_loader(
            lambda p: qwen_image_model.load_qwen_image_model(
                "cpu", p, "torch", False, False, False, False, "cpu", BF16
            )
        )

    return {
        "dit": Part("diffusion_models", "random_qwen_image_bf16.safetensors", dit),
        "vae": Part(
            "vae", "random_qwen_image_vae.safetensors", lambda: built_by_loader(qwen_image_utils.load_vae)
        ),
        "text_encoder": Part(
            "text_encoders",
            "random_qwen_2.5_vl_7b.safetensors",
            lambda: built_by_loader(lambda p: qwen_image_utils.load_qwen2_5_vl(p, BF16, "cpu")[1]),
        ),
    }


FAMILIES: dict[str, Callable[[str], dict[str, Part]]] = {
    "wan": _wan_parts,
    "z_image": _zimage_parts,
    "flux2": _flux2_parts,
    "qwen_image": _qwen_image_parts,
}


# --------------------------------------------------------------------------- streaming safetensors writer
DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}


def tensor_list(
    module: torch.nn.Module, part: Part, floats: torch.dtype = BF16
) -> list[tuple[str, list[int], torch.dtype]]:
    """(file name, shape, dtype on disk) of every tensor the part's file holds; floats in `floats`."""
    out = []
    for name, t in module.state_dict().items():
        if name in part.skip:
            continue
        dtype = floats if t.is_floating_point() else t.dtype
        out.append((part.prefix + name, list(t.shape), dtype))
    return out


def _fill(name: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random weights: norms and scales at 1, biases at 0, the rest N(0, 0.02)."""
    if not t.is_floating_point():
        return t.zero_()
    if "norm" in name or name.endswith((".scale", ".gamma", "gamma")):
        return t.fill_(1.0)
    if name.endswith(".bias"):
        return t.zero_()
    return t.normal_(0.0, 0.02, generator=gen)


def write_streaming(tensors: list, path: Path, device: str, real: bool, seed: int = 0) -> int:
    """Write a safetensors file of `tensors` (name, shape, dtype): the header, then each tensor made on
    `device` and written alone (real), or a hole of the full size (sparse). Returns bytes of data."""
    header, offset = {}, 0
    for name, shape, dtype in tensors:
        size = torch.tensor([], dtype=dtype).element_size()
        for d in shape:
            size *= d
        header[name] = {"dtype": DTYPES[dtype], "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"note": "random weights (lora-workbench bench)"}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device=device).manual_seed(seed)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        if not real:
            f.truncate(8 + len(raw) + offset)
            return offset
        for name, shape, dtype in tensors:
            t = _fill(name, torch.empty(shape, dtype=dtype, device=device), gen)
            f.write(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            del t
    return offset


def _already_written(path: Path) -> bool:
    """A complete, filled file of ours from an earlier run (not a sparse one): kept, not rewritten."""
    try:
        st = path.stat()
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return False
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    filled = st.st_blocks * 512 >= st.st_size * 0.9
    ours = header.get("__metadata__", {}).get("note", "").startswith("random weights")
    return ours and filled and st.st_size == 8 + n + end


def save_family(
    family: str,
    variant: str,
    models: Path,
    device: str,
    mode: str,
    real_parts: tuple[str, ...] = (),
    fp32_parts: tuple[str, ...] = (),
) -> dict[str, str]:
    """Write the family's parts into a ComfyUI-like models/ folder; returns {part: path}. mode "real"
    fills every part, "sparse" none but `real_parts` (the VAE alone for a CPU latent-cache check);
    `fp32_parts` are written in float32 (a Wan DiT that trains on a CPU: musubi's time embedding runs
    under autocast(float32), which CPU autocast refuses, so bf16 weights meet float inputs)."""
    out = {}
    for key, part in FAMILIES[family](variant).items():
        module = part.build()
        floats = torch.float32 if key in fp32_parts else BF16
        path = (
            models / part.folder / (part.name.replace("_bf16", "_fp32") if key in fp32_parts else part.name)
        )
        real = mode == "real" or key in real_parts
        if not (real and _already_written(path)):
            write_streaming(tensor_list(module, part, floats), path, device, real)
        del module
        out[key] = str(path)
    return out


def parts_report() -> dict:
    """family -> part -> parameter count in billions (meta device: costs no memory)."""
    variants = {"wan": "t2v-1.3B", "z_image": "", "flux2": "klein-4b", "qwen_image": ""}
    report = {}
    for family, variant in variants.items():
        report[family] = {}
        for key, part in FAMILIES[family](variant).items():
            n = sum(math.prod(shape) for _, shape, _ in tensor_list(part.build(), part))
            report[family][key] = round(n / 1e9, 3)
    return report


USAGE = """usage (in musubi-tuner's environment):
  python musubi_models.py save FAMILY VARIANT MODELS_DIR DEVICE real|sparse OUT.json [REAL_PARTS [FP32_PARTS]]
  python musubi_models.py parts"""

if __name__ == "__main__":
    if len(sys.argv) in (8, 9, 10) and sys.argv[1] == "save":
        family, variant, models, device, mode, out = sys.argv[2:8]
        real_parts = tuple(p for p in (sys.argv[8] if len(sys.argv) > 8 else "").split(",") if p)
        fp32_parts = tuple(p for p in (sys.argv[9] if len(sys.argv) > 9 else "").split(",") if p)
        files = save_family(family, variant, Path(models), device, mode, real_parts, fp32_parts)
        Path(out).write_text(json.dumps(files), encoding="utf-8")
    elif len(sys.argv) == 2 and sys.argv[1] == "parts":
        print(json.dumps(parts_report(), indent=1))
    else:
        sys.exit(USAGE)
