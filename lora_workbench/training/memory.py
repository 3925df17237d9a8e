"""Will this run fit the GPU it runs on? A rough VRAM estimate before launch, and what to change when
it clearly does not (fp8, block swapping, cached text encoders, batch, resolution).

Pure arithmetic on the family's sizes (families.MemoryModel) and the run's shape; the GPU's memory
is an input (the device probe measures it). The numbers are an estimate, calibrated on sd-scripts'
own VRAM tables (docs/flux_train_network.md: FLUX.1 with fp8 fits 24 GB at batch 2, 16 GB with
block swapping, 12 GB with blocks_to_swap 16 and an 8-bit optimizer, ...) and musubi-tuner's
(docs/qwen_image.md: 42 GB, 30 GB with fp8, 24 GB with blocks_to_swap 16; the per-family maximum
swaps), so the verdict only blocks nothing: "too big" is a warning with the changes that make it fit.
Video families multiply the activations by the clip's latent frames; musubi's text-encoder cache is
a peak of its own ("caching"), which fp8_text_encoder halves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from . import families

GIB = 1024**3
FIXED_GIB = 1.0  # CUDA context, cuDNN workspace, allocator slack
_OPTIMIZER_BYTES = {  # per trained parameter: fp32 weight + grad + optimizer state
    "AdamW": 16,
    "AdamW8bit": 10,
    "PagedAdamW8bit": 10,
    "Lion": 12,
    "Lion8bit": 9,
    "Adafactor": 10,
    "SGDNesterov": 12,
    "Prodigy": 20,
}


@dataclass(frozen=True)
class RunShape:
    """The settings that decide a run's memory."""

    family: str
    variant: str = ""  # ModelInfo.variant (SD3 medium / 3.5 medium / 3.5 large differ fourfold)
    width: int = 1024
    height: int = 1024
    batch: int = 1
    mixed_precision: str = "bf16"  # no | fp16 | bf16
    fp8: bool = False  # the family's fp8 option (fp8_base, or fp8_scaled for HunyuanImage)
    blocks_to_swap: int = 0
    gradient_checkpointing: bool = True
    cache_text_encoder_outputs: bool = True
    train_text_encoder: bool = False
    cache_latents: bool = True
    network_dim: int = 16
    optimizer: str = "AdamW"
    text_encoder_cpu: bool = False  # the family's te_cpu_option (HunyuanImage: --text_encoder_cpu)
    frames: int = 1  # video families: the frames of a clip (target_frames' largest)
    te_fp8: bool = False  # the text encoder in fp8 (musubi-tuner's fp8_text_encoder)


@dataclass
class MemoryEstimate:
    peak_gib: float
    parts: dict[str, float]
    gpu_gib: float | None
    verdict: str  # fits | tight | too_big | unknown
    advice: list[str] = field(default_factory=list)

    def message(self) -> str:
        """One line for the node and the log."""
        if self.gpu_gib is None:
            return f"Estimated peak GPU memory: about {self.peak_gib:.1f} GiB."
        head = f"Estimated peak GPU memory: about {self.peak_gib:.1f} GiB of the GPU's {self.gpu_gib:.0f} GiB"
        if self.verdict == "fits":
            return head + "."
        tail = " ".join(self.advice) or "Lower the resolution or the batch size."
        return f"{head}: {'it may not fit' if self.verdict == 'tight' else 'it will not fit'}. {tail}"


def _weight_bytes(shape: RunShape) -> float:
    return 4.0 if shape.mixed_precision == "no" else 2.0


def parts(shape: RunShape) -> dict[str, float]:
    """GiB per item while training, and the text-encoder caching phase ("caching")."""
    fam = families.get(shape.family)
    m = fam.memory_for(shape.variant)
    wbytes = _weight_bytes(shape)
    dit_bytes = 1.0 if shape.fp8 and fam.fp8_option else wbytes
    te_fp8 = shape.te_fp8 or (shape.fp8 and fam.fp8_option == "fp8_base" and not fam.te_fp8_option)
    te_bytes = 1.0 if te_fp8 else wbytes
    swapped = min(max(shape.blocks_to_swap, 0), m.max_swap) * m.swap_unit_b
    te_gib = 0.0 if shape.text_encoder_cpu else m.te_b * 1e9 * te_bytes / GIB
    if not shape.cache_text_encoder_outputs:
        resident = te_gib  # every encoder stays on the GPU
    elif shape.train_text_encoder:  # cached outputs of the rest; the trained encoder stays
        resident = (m.trained_te_b if m.trained_te_b is not None else m.te_b) * 1e9 * te_bytes / GIB
    else:
        resident = 0.0
    mpix = shape.width * shape.height / 1e6
    act = shape.batch * mpix * m.act_gib_per_mpix * latent_frames(shape.frames)
    if not shape.gradient_checkpointing:
        act *= m.no_checkpointing_factor
    lora_params = shape.network_dim * m.lora_m_per_rank * 1e6
    opt_bytes = _OPTIMIZER_BYTES.get(shape.optimizer, 16)
    return {
        "fixed": FIXED_GIB,
        "model": max(m.dit_b - swapped, 0.0) * 1e9 * dit_bytes / GIB,
        "text_encoders": resident,
        "vae": 0.0 if shape.cache_latents else m.vae_b * 1e9 * wbytes / GIB,
        "lora_and_optimizer": lora_params * opt_bytes / GIB,
        "activations": act,
        "caching": FIXED_GIB + te_gib + 0.5,
    }


def latent_frames(frames: int) -> int:
    """The video VAEs (Wan, HunyuanVideo, FramePack) keep the first frame and 1 of every 4 after it."""
    return (max(frames, 1) - 1) // 4 + 1


def peak_gib(shape: RunShape) -> float:
    p = parts(shape)
    training = sum(v for k, v in p.items() if k != "caching")
    return max(training, p["caching"])


def _verdict(peak: float, gpu_gib: float | None) -> str:
    if gpu_gib is None or gpu_gib <= 0:
        return "unknown"
    if peak <= 0.9 * gpu_gib:
        return "fits"
    return "tight" if peak <= gpu_gib else "too_big"


def estimate(shape: RunShape, gpu_gib: float | None = None) -> MemoryEstimate:
    """The estimate for `shape` on a GPU with `gpu_gib` GiB (None: unknown GPU, no verdict)."""
    peak = peak_gib(shape)
    est = MemoryEstimate(
        round(peak, 1), {k: round(v, 2) for k, v in parts(shape).items()}, gpu_gib, _verdict(peak, gpu_gib)
    )
    if est.verdict in ("tight", "too_big"):
        est.advice = advise(shape, gpu_gib)
    return est


# --------------------------------------------------------------------------- what to change
def _levers(shape: RunShape) -> list[tuple[str, dict]]:
    """Changes in the order they cost the least quality and speed; each applies on top of the previous."""
    fam = families.get(shape.family)
    out: list[tuple[str, dict]] = []
    if not shape.cache_text_encoder_outputs and not shape.train_text_encoder:
        out.append(("turn on cache_text_encoder_outputs", {"cache_text_encoder_outputs": True}))
    if not shape.gradient_checkpointing:
        out.append(("turn on gradient_checkpointing", {"gradient_checkpointing": True}))
    if fam.fp8_option and not shape.fp8:
        out.append((f"turn on {fam.fp8_option}", {"fp8": True}))
    if fam.te_fp8_option and not shape.te_fp8:  # musubi: the text-encoder cache is its own peak
        out.append(("turn on fp8_text_encoder", {"te_fp8": True}))
    if shape.optimizer == "AdamW":
        out.append(("use the AdamW8bit optimizer", {"optimizer": "AdamW8bit"}))
    te_cpu = fam.memory_for(shape.variant).te_cpu_option
    if te_cpu and not shape.text_encoder_cpu:
        out.append((f"turn on {te_cpu} (slow text encoding; cache it to disk)", {"text_encoder_cpu": True}))
    if shape.train_text_encoder:
        out.append(
            (
                "train the diffusion model only (no text-encoder LoRA) with cached text-encoder outputs",
                {"train_text_encoder": False, "cache_text_encoder_outputs": True},
            )
        )
    return out


def _swap_needed(shape: RunShape, gpu_gib: float) -> int | None:
    """The fewest blocks_to_swap (beyond the current) that bring the peak under 90% of the GPU."""
    m = families.get(shape.family).memory_for(shape.variant)
    for n in range(shape.blocks_to_swap + 1, m.max_swap + 1):
        if peak_gib(replace(shape, blocks_to_swap=n)) <= 0.9 * gpu_gib:
            return n
    return None


def advise(shape: RunShape, gpu_gib: float) -> list[str]:
    """The smallest set of changes (in _levers order, then swapping, batch, resolution) that fits."""
    steps: list[str] = []
    current = shape
    for text, updates in _levers(shape):
        current = replace(current, **updates)
        steps.append(text)
        if peak_gib(current) <= 0.9 * gpu_gib:
            return [_sentence(steps, current)]
    n = _swap_needed(current, gpu_gib)
    if n is not None:
        return [_sentence([*steps, f"set blocks_to_swap {n}"], replace(current, blocks_to_swap=n))]
    m = families.get(shape.family).memory_for(shape.variant)
    if m.max_swap:
        steps.append(f"set blocks_to_swap {m.max_swap}")
        current = replace(current, blocks_to_swap=m.max_swap)
    if current.batch > 1:
        steps.append("train with batch size 1")
        current = replace(current, batch=1)
        if peak_gib(current) <= 0.9 * gpu_gib:
            return [_sentence(steps, current)]
    side = _fitting_side(current, gpu_gib)
    if side:
        steps.append(f"train at {side}x{side}")
        return [_sentence(steps, replace(current, width=side, height=side))]
    return [
        f"Even with all of: {', '.join(steps) or 'the lightest settings'} at 512x512 it needs about "
        f"{peak_gib(replace(current, width=512, height=512)):.1f} GiB; train on a GPU with more memory."
    ]


def _fitting_side(shape: RunShape, gpu_gib: float) -> int | None:
    step = families.get(shape.family).bucket_step
    side = int(math.sqrt(shape.width * shape.height)) // 64 * 64
    while side > 512:
        side -= 64
        if peak_gib(replace(shape, width=side, height=side)) <= 0.9 * gpu_gib:
            return side - side % step
    return None


def _sentence(steps: list[str], shape: RunShape) -> str:
    return f"To fit: {', '.join(steps)} (about {peak_gib(shape):.1f} GiB)."
