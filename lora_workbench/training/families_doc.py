"""docs/families.md, generated from the family tables: per family, the trainer and its script(s), the
network modules, the extra model files (the trainer's option, ComfyUI folder, the name that pre-selects
it), the family options the trainer's docs recommend, the sample settings and the memory figures. A unit test fails when
the committed copy is stale; scripts regenerate it.
"""

from __future__ import annotations

from . import families
from .memory import RunShape, estimate

PATH = "docs/families.md"

_INTRO = """# Model families

Generated from `lora_workbench/training/families.py` and
`lora_workbench/training/backends/musubi/families.py` (do not edit by hand). The trainer reads the
family from the base model file itself (`lora_workbench/modelfiles/detect.py`: full checkpoints and
the diffusion-model-only files ComfyUI keeps in `models/diffusion_models`), picks the trainer (kohya
sd-scripts or kohya musubi-tuner), the script and network module below, and passes the extra files
as the trainer's options. Set the model type by hand when a file is not recognised. LoadTrainedLoRA
tells the family of a LoRA from its keys and refuses a LoRA made for another family.
"""


def _files(fam: families.TrainingFamily) -> list[str]:
    if not fam.model_files:
        return ["- Extra files: none (the checkpoint carries its text encoders and VAE)."]
    out = ["- Extra files (picked in ComfyUI's folders; `(auto)` takes the obvious one by name):"]
    for f in fam.model_files:
        optional = f" (optional when the checkpoint carries {f.bundled_kind})" if f.bundled_kind else ""
        picked = f", picked in `{f.widget}`" if f.widget else ""
        only = f" ({', '.join(f.variants)} only)" if f.variants else ""
        out.append(
            f"  - `--{f.option}`: {f.label} from `{f.folder}`{picked}, e.g. `{f.example}`{optional}{only}"
        )
    return out


def _trainer(fam: families.TrainingFamily) -> str:
    modules = ", ".join(f"`{m}`" for m in fam.network_modules)
    if not fam.steps:
        return f"- kohya sd-scripts: `{fam.script}`; network module: {modules}"
    steps = ", ".join(f"`{script}`" for script in fam.steps.values())
    text = f"- kohya musubi-tuner, one step each: {steps}; network module: {modules}"
    if fam.output == "convert":
        text += "; the LoRA is converted for ComfyUI"
    if fam.variant_names:
        text += f"; `--{fam.variant_option}`: " + ", ".join(f"`{v}`" for v in fam.variant_names)
    return text


def _options(fam: families.TrainingFamily) -> list[str]:
    out = []
    if fam.recommended:
        pairs = ", ".join(f"`{k} = {v!r}`" for k, v in fam.recommended.items())
        out.append(f"- Recommended options: {pairs}")
    if fam.required:
        out.append("- Always set: " + ", ".join(f"`{k} = {v!r}`" for k, v in fam.required.items()))
    return out


def _sample(fam: families.TrainingFamily) -> str:
    s = fam.sample
    text = f"- Samples: {s.steps} steps" + (f", CFG {s.cfg:g}" if s.cfg is not None else "")
    if s.guidance is not None:
        text += f", guidance {s.guidance:g}"
    if s.negative:
        text += ", with a negative prompt"
    for variant, v in fam.sample_variants.items():
        text += f"; {variant}: {v.steps} steps"
    return text + "."


def _memory(fam: families.TrainingFamily) -> str:
    m = fam.memory
    side = 1024
    peak = estimate(RunShape(fam.id, width=side, height=side, fp8=False)).peak_gib
    text = f"- Memory: {m.dit_b:g} B parameters; about {peak:.0f} GiB at {side}x{side}, batch 1"
    if fam.fp8_option:
        fp8 = estimate(RunShape(fam.id, width=side, height=side, fp8=True)).peak_gib
        text += f" ({fp8:.0f} GiB with `{fam.fp8_option}`)"
    if m.max_swap:
        text += f"; `blocks_to_swap` up to {m.max_swap}"
    return text + "."


def render() -> str:
    parts = [_INTRO]
    for fam in families.all_recipes():
        parts.append(f"## {fam.name} (`{fam.id}`)\n")
        lines = [
            _trainer(fam)
            + f"; sizes in multiples of {fam.bucket_step}; mixed precision `{fam.mixed_precision}` on a GPU.",
            *_files(fam),
            *_options(fam),
            _sample(fam),
            _memory(fam),
        ]
        if not fam.trains_text_encoder:
            lines.append("- The LoRA trains the diffusion model only.")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
