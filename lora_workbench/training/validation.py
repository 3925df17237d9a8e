"""Whether a TrainOptions can run, decided in one place, before anything is launched.

Three layers: the per-setting checks generated from the settings table (type, bounds, choices,
pattern), the cross-field rules below (each a small function), and the checks that need to know
the device and the base model's family. Every failure is a sentence that names the setting and
says what to set; doubtful but workable values come back as warnings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError
from ..modelfiles import families as file_families
from . import families as recipes
from . import kvargs, sample_prompts
from .settings import FAMILIES, SETTINGS, Setting

# Text settings with a check of their own, beyond type and pattern.
_TEXT_CHECKS: dict[str, Callable[[str], None]] = {"sample_prompts": sample_prompts.check}
_TYPE_WORDS = {bool: "on or off (a boolean)", int: "a whole number", float: "a number", str: "text"}


def sanitize_output_name(name: str) -> str:
    """A safe default output name from free text (e.g. the project folder): [A-Za-z0-9._-], no leading dot."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._-")[:100]
    return out or "lora"


# --------------------------------------------------------------------------- one setting
def _check_type(s: Setting, value: Any) -> None:
    if s.type is bool:
        ok = isinstance(value, bool)
    elif s.type in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (s.type is float or isinstance(value, int))
    else:
        ok = isinstance(value, s.type)
    if not ok:
        raise ValidationError(f"{s.name} must be {_TYPE_WORDS[s.type]}, not {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{s.name} must be a finite number, not {value}.")


def _short(value: Any) -> str:
    """A number as a sentence shows it: a 400-digit int as its first digits and its length."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def check_setting(s: Setting, value: Any) -> None:
    """The checks the table declares for one setting: type, choices, bounds, pattern."""
    _check_type(s, value)
    if s.choices and value not in s.choices:
        raise ValidationError(f"{s.name} is {value!r}; choose one of: {', '.join(s.choices)}.")
    if s.low is not None and value < s.low or s.high is not None and value > s.high:
        raise ValidationError(f"{s.name} is {_short(value)}; set it between {s.low} and {s.high}.")
    if s.pattern is not None and value and not s.pattern.fullmatch(value):
        raise ValidationError(f"{s.name} {value!r} {s.pattern_hint}.")
    if s.kv == "network":
        kvargs.network_args(value)
    elif s.kv == "optimizer":
        kvargs.optimizer_args(value)
    if s.name in _TEXT_CHECKS:
        _TEXT_CHECKS[s.name](value)


# --------------------------------------------------------------------------- cross-field rules
# Each takes the options and returns a warning (or None); a value that cannot work raises.
def _learning_rates(o) -> None:
    if o.learning_rate <= 0 and o.unet_lr <= 0:
        raise ValidationError(
            "learning_rate and unet_lr are both 0: nothing would be learned; set learning_rate (e.g. 1e-4)."
        )


def _resolution_steps(o) -> None:
    """What no trainer takes, before the family is known (the family's own step: _fixed_size)."""
    _size_multiple(o, 8 if o.buckets == "on" else 16, "no trainer takes it; they need")


def _size_multiple(o, step: int, who: str, buckets_note: bool = True) -> None:
    for name in ("width", "height"):
        value = getattr(o, name)
        if value % step:
            lower = max(step, value - value % step)
            raise ValidationError(
                f"{name} is {value}; {who} a multiple of {step}"
                + (" (8 with buckets on)" if buckets_note and step > 8 else "")
                + f": set it to {lower} or {lower + step}."
            )


def _fixed_size(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    """Without buckets sd-scripts asserts sizes in multiples of 64; musubi-tuner always buckets, by its
    step (Wan's 832x480 trains as it is)."""
    who = f"{fam.backend} needs for {fam.name}"
    if fam.always_buckets:
        _size_multiple(o, fam.bucket_step, who, buckets_note=False)
    elif o.buckets != "on":
        _size_multiple(o, fam.fixed_size_step, who)


def _bucket_sides(o) -> None:
    if o.buckets != "on":
        return
    steps = o.bucket_reso_steps
    for name in ("min_bucket_reso", "max_bucket_reso"):
        if getattr(o, name) % steps:
            raise ValidationError(
                f"{name} is {getattr(o, name)}; buckets step by {steps} (bucket_reso_steps), so set a "
                f"multiple of {steps}."
            )
    if o.min_bucket_reso > o.max_bucket_reso:
        raise ValidationError(
            f"min_bucket_reso {o.min_bucket_reso} is above max_bucket_reso {o.max_bucket_reso}; swap them."
        )
    if o.width and o.height:  # 0 until the dataset's resolution is known (train.plan checks again)
        check_bucket_range(o.width, o.height, o.min_bucket_reso, o.max_bucket_reso)


def check_bucket_range(width: int, height: int, low: int, high: int) -> None:
    """sd-scripts asserts min(resolution) >= min_bucket_reso and max(resolution) <= max_bucket_reso
    (BaseDataset.adjust_min_max_bucket_reso_by_steps) after loading the models; say it before."""
    if min(width, height) < low:
        raise ValidationError(
            f"min_bucket_reso {low} is above the training size {width}x{height} (sd-scripts asserts it "
            f"is at most the smaller side); set min_bucket_reso to {min(width, height)} or less, or train "
            f"larger."
        )
    if max(width, height) > high:
        raise ValidationError(
            f"max_bucket_reso {high} is below the training size {width}x{height} (sd-scripts asserts it "
            f"is at least the larger side); set max_bucket_reso to {max(width, height)} or more."
        )


def _timesteps(o) -> None:
    if o.min_timestep >= o.max_timestep:
        raise ValidationError(
            f"min_timestep {o.min_timestep} is not below max_timestep {o.max_timestep}; nothing would be "
            f"trained: set min_timestep lower than max_timestep."
        )


def _token_length(o) -> None:
    if o.max_token_length not in (75, 150, 225):
        raise ValidationError(
            f"max_token_length is {o.max_token_length}; sd-scripts takes 75, 150 or 225: set one of them."
        )


def _noise_offset_needed(o) -> None:
    for name in ("adaptive_noise_scale", "noise_offset_random_strength"):
        if getattr(o, name) and not o.noise_offset:
            raise ValidationError(
                f"{name} works on the noise offset and noise_offset is 0 (sd-scripts refuses "
                f"adaptive_noise_scale without it); set noise_offset (e.g. 0.05) or turn {name} off."
            )


def _full_precision(o) -> None:
    for name, precision in (("full_bf16", "bf16"), ("full_fp16", "fp16")):
        if getattr(o, name) and o.mixed_precision != precision:
            raise ValidationError(
                f"{name} keeps the gradients in {precision} and mixed_precision is {o.mixed_precision} "
                f"(sd-scripts asserts they match); set mixed_precision to {precision} or turn {name} off."
            )


_ADAPTIVE = ("Prodigy", "DAdaptation", "DAdaptAdaGrad", "DAdaptAdam", "DAdaptAdan", "DAdaptAdanIP",
             "DAdaptLion", "DAdaptSGD", "Adafactor")  # fmt: skip


def _learning_rate_size(o) -> str | None:
    high = max(o.learning_rate, o.unet_lr, o.text_encoder_lr)
    if high > 1 and o.optimizer not in _ADAPTIVE:
        return (
            f"a learning rate of {high:g} with {o.optimizer} will most likely diverge; rates above 1 are "
            f"for Prodigy and the DAdapt optimizers (which find their own step size)."
        )
    return None


def _alpha_above_dim(o) -> str | None:
    if o.network_alpha > o.network_dim:
        return (
            f"network_alpha {o.network_alpha:g} is above network_dim {o.network_dim}: the update is scaled "
            f"by alpha/dim = {o.network_alpha / o.network_dim:.2g}, which usually overshoots; keep alpha <= dim."
        )
    return None


def _constant_without_warmup(o) -> None:
    if o.lr_scheduler == "constant" and o.lr_warmup_steps > 0:
        raise ValidationError(
            "lr_scheduler 'constant' takes no warmup (sd-scripts raises); set lr_warmup_steps to 0 or use "
            "constant_with_warmup."
        )


def _python_launcher_is_single(o) -> None:
    if o.launcher == "python" and (o.num_processes > 1 or o.num_machines > 1):
        raise ValidationError(
            "Several processes or machines need launcher 'accelerate'; set launcher to accelerate or "
            "num_processes and num_machines to 1."
        )


def _multi_machine(o) -> None:
    if o.num_machines <= 1:
        return
    if not o.main_process_ip:
        raise ValidationError(
            "Training on several machines needs main_process_ip: the address of machine rank 0 "
            "(e.g. 192.168.1.10)."
        )
    if o.machine_rank >= o.num_machines:
        raise ValidationError(f"machine_rank {o.machine_rank} must be below num_machines {o.num_machines}.")


def _conv_dim_fits_the_network(o) -> None:
    if o.network_type == "locon" and not o.conv_dim:
        raise ValidationError(
            "network_type locon trains the conv layers too: set conv_dim (e.g. 8), or use lora."
        )
    if o.conv_dim and o.network_type not in kvargs.CONV_TYPES:
        raise ValidationError(
            f"conv_dim {o.conv_dim} has no effect with network_type {o.network_type}; set network_type to "
            f"locon (LoRA + conv layers) or set conv_dim to 0."
        )
    if o.network_type == "dylora" and o.conv_dim and o.conv_dim != o.network_dim:
        raise ValidationError(
            f"DyLoRA needs conv_dim equal to network_dim ({o.network_dim}); set conv_dim to {o.network_dim} or 0."
        )


def _dylora(o) -> None:
    if o.network_type not in kvargs.DYLORA_TYPES:
        if o.dylora_unit != 1:
            raise ValidationError(
                f"dylora_unit is for network_type dylora or lycoris_dylora; set it back to 1 "
                f"(network_type is {o.network_type})."
            )
        return
    if o.network_dim % o.dylora_unit:
        raise ValidationError(
            f"network_dim {o.network_dim} is not a multiple of dylora_unit {o.dylora_unit}; change one of them."
        )
    if o.network_type == "dylora" and (o.network_dropout or o.rank_dropout or o.module_dropout):
        raise ValidationError(
            "sd-scripts' DyLoRA ignores network_dropout, rank_dropout and module_dropout; set them to 0 "
            "(or use lycoris_dylora)."
        )


def _network_args_fit(o) -> None:
    kvargs.network_args(o.network_args, o.network_type)


def _optimizer_args_fit(o) -> None:
    kvargs.optimizer_args(o.optimizer_args, o.optimizer)
    if o.lr_scheduler == "adafactor" and o.optimizer != "Adafactor":
        raise ValidationError(
            "lr_scheduler adafactor works only with the Adafactor optimizer; pick another scheduler."
        )


def _warmup_once(o) -> None:
    if o.lr_warmup_ratio and o.lr_warmup_steps:
        raise ValidationError("lr_warmup_steps and lr_warmup_ratio are both set; keep one (the other at 0).")
    if o.lr_warmup_ratio and o.lr_scheduler == "constant":
        raise ValidationError(
            "lr_scheduler 'constant' takes no warmup (sd-scripts raises); set lr_warmup_ratio to 0 or use "
            "constant_with_warmup."
        )


def _resume_or_weights(o) -> str | None:
    if o.resume and o.network_weights:
        raise ValidationError(
            "resume continues a run from its saved state; network_weights starts a new run from a LoRA file. "
            "Set only one of them."
        )
    if o.dim_from_weights and not o.network_weights:
        raise ValidationError("dim_from_weights needs network_weights (the LoRA file to take the rank from).")
    if o.save_last_n_epochs_state and not o.save_state:
        raise ValidationError("save_last_n_epochs_state keeps training states: turn save_state on too.")
    if o.save_state and not o.save_every_n_epochs:
        return (
            "save_state with save_every_n_epochs 0 saves a state only at the end: a cancelled run cannot "
            "be resumed; set save_every_n_epochs to 1 to keep a state per epoch."
        )
    return None


def _multires_discount(o) -> None:
    if o.multires_noise_discount != 0.3 and not o.multires_noise_iterations:
        raise ValidationError(
            "multires_noise_discount has no effect without multires_noise_iterations; set the iterations "
            "(e.g. 6) or the discount back to 0.3."
        )


RULES: tuple[Callable[[Any], str | None], ...] = (
    _learning_rates,
    _resolution_steps,
    _bucket_sides,
    _alpha_above_dim,
    _constant_without_warmup,
    _python_launcher_is_single,
    _multi_machine,
    _conv_dim_fits_the_network,
    _dylora,
    _network_args_fit,
    _optimizer_args_fit,
    _warmup_once,
    _resume_or_weights,
    _multires_discount,
    _timesteps,
    _token_length,
    _noise_offset_needed,
    _full_precision,
    _learning_rate_size,
)


# --------------------------------------------------------------------------- entry points
def validate(opts) -> list[str]:
    """Raise ValidationError for the first value that cannot work; return warnings for doubtful ones.
    A run pinned to the CPU (device=cpu) is checked for GPU-only values here too."""
    for s in SETTINGS:
        check_setting(s, getattr(opts, s.name))
    warnings = [w for w in (rule(opts) for rule in RULES) if w]
    if opts.device == "cpu":
        check_device(opts, "cpu")
    return warnings


def check_device(opts, device: str) -> None:
    """What cannot run on the CPU, as sentences (sd-scripts would fail after minutes of loading)."""
    if device != "cpu":
        return
    for s in SETTINGS:
        value = getattr(opts, s.name)
        if value == s.default or not (s.gpu_only or value in s.gpu_only_values):
            continue
        why = f" ({s.gpu_why})" if s.gpu_why else ""
        raise ValidationError(
            f"{s.name} {value} needs a GPU{why} and this run is on the CPU; set {s.name} to {s.default}."
        )


def family_name(family: str) -> str:
    if family in file_families.FAMILIES:
        return file_families.name(family)
    try:
        return recipes.get(family).name
    except KeyError:
        return family


def check_family(opts, family: str, variant: str = "") -> None:
    """A setting given for a model family it does not apply to is an error, not silently dropped; so
    is a value the family's trainer does not take (a network module, a timestep sampling, a swap)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}")
    for s in SETTINGS:
        value = getattr(opts, s.name)
        if value != s.default and family not in s.families:
            names = ", ".join(family_name(f) for f in s.families)
            raise ValidationError(
                f"{s.name} applies only to {names} base models and this base model is "
                f"{family_name(family)}; set {s.name} back to {s.default!r}."
            )
    for rule in FAMILY_RULES:
        rule(opts, recipes.get(family), variant)


def _network_module(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    if o.network_module != "auto" and o.network_module not in fam.network_modules:
        raise ValidationError(
            f"network_module {o.network_module} does not train {fam.name} models; use auto or one of: "
            f"{', '.join(fam.network_modules)}."
        )


# What every sd-scripts family takes; a family's own (Lumina 2's nextdit_shift) come from its recipe.
_SD_SCRIPTS_SAMPLINGS = ("sigma", "uniform", "sigmoid", "shift", "flux_shift")


def _timestep_sampling(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    takes = (*(fam.timestep_samplings or _SD_SCRIPTS_SAMPLINGS), *fam.own_timestep_samplings)
    if o.timestep_sampling == "auto" or o.timestep_sampling in takes:
        return
    owners = [r.name for r in recipes.all_recipes() if o.timestep_sampling in r.own_timestep_samplings]
    if owners:
        raise ValidationError(
            f"timestep_sampling {o.timestep_sampling} is {' and '.join(owners)}'s; {fam.name}'s trainer takes "
            f"{', '.join(takes[:-1])} or {takes[-1]} (or auto)."
        )
    raise ValidationError(
        f"timestep_sampling {o.timestep_sampling} is not one {fam.name}'s trainer takes; choose auto or one "
        f"of: {', '.join(takes)}."
    )


def _optimizer_built(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    """musubi-tuner builds AdamW, AdamW8bit and Adafactor; any other name would crash after loading."""
    if fam.optimizers and o.optimizer not in fam.optimizers:
        raise ValidationError(
            f"optimizer {o.optimizer} is not one {fam.name}'s trainer can build; choose one of: "
            f"{', '.join(fam.optimizers)}."
        )


def _target_frames(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    """The video models take clips of 4n+1 frames (their VAEs compress time by 4)."""
    if not fam.video:
        return
    bad = [n for n in str(o.target_frames).split(",") if (int(n) - 1) % 4]
    if bad:
        n = int(bad[0])
        low = max(1, n - (n - 1) % 4)
        raise ValidationError(
            f"target_frames holds {n}; {fam.name} trains on clips of 4n+1 frames (1, 5, 9, ... 25, ...): use "
            f"{low} or {low + 4}."
        )


def _blocks_to_swap(o, fam: recipes.TrainingFamily, variant: str) -> None:
    most = fam.memory_for(variant).max_swap
    if o.blocks_to_swap > most:
        raise ValidationError(
            f"blocks_to_swap is {o.blocks_to_swap}; {fam.name} {variant} swaps at most {most} blocks "
            f"(sd-scripts asserts it): set {most} or fewer."
        )


def network_module_for(o, fam: recipes.TrainingFamily) -> str:
    """The module a run trains with: network_type's own, else network_module or the family's first."""
    if o.network_type != "lora":
        return kvargs.NETWORK_MODULES[o.network_type]
    return fam.network_modules[0] if o.network_module == "auto" else o.network_module


def _network_type_or_module(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    if o.network_type != "lora" and o.network_module != "auto":
        raise ValidationError(
            f"network_type {o.network_type} picks its module itself ({kvargs.NETWORK_MODULES[o.network_type]}); "
            f"set network_module to auto, or network_type to lora to train with {o.network_module}."
        )
    if o.network_module == "networks.dylora":
        raise ValidationError(
            "network_module networks.dylora: set network_type to dylora instead (and network_module to auto), "
            "so dylora_unit and its checks apply."
        )


def _network_args_read_by_module(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    """A key the module does not read is an error, not silently dropped (block_dims with FLUX's LoRA)."""
    module = network_module_for(o, fam)
    reads = kvargs.MODULE_READS.get(module)
    if reads is None:  # LyCORIS: checked per algorithm by kvargs
        return
    for key, _value in kvargs.split_pairs(o.network_args, "network_args"):
        if key not in reads:
            readers = [m for m, keys in kvargs.MODULE_READS.items() if key in keys]
            raise ValidationError(
                f"network_args {key} is not read by {module} (the {fam.name} module this run trains with); "
                f"only {', '.join(readers) or 'other network types'} read it. Remove it."
            )
    dropped = [n for n in ("rank_dropout", "module_dropout") if getattr(o, n)]
    if dropped and module in kvargs.NO_RANK_DROPOUT:
        raise ValidationError(f"{module} ignores {' and '.join(dropped)}; set them to 0.")
    if o.scale_weight_norms and module in kvargs.NO_MAX_NORM:
        raise ValidationError(
            f"scale_weight_norms needs a network that can rescale its weights and {module} cannot (sd-scripts "
            f"would only warn and train without it); set scale_weight_norms to 0."
        )


def _bucket_reso_steps(o, fam: recipes.TrainingFamily, _variant: str) -> None:
    """sd-scripts' trainers assert bucket_reso_steps divides by their VAE's step (verify_bucket_reso_steps:
    64 for SD 1.x/2.x, 32 for SDXL, FLUX, SD3, HunyuanImage, 16 for Lumina and Anima)."""
    if o.buckets != "off" and o.bucket_reso_steps % fam.bucket_step:
        low = max(fam.bucket_step, o.bucket_reso_steps - o.bucket_reso_steps % fam.bucket_step)
        raise ValidationError(
            f"bucket_reso_steps is {o.bucket_reso_steps}; sd-scripts' {fam.name} trainer needs a multiple "
            f"of {fam.bucket_step} (it asserts it): set {low}."
        )


FAMILY_RULES: tuple[Callable[[Any, recipes.TrainingFamily, str], None], ...] = (
    _fixed_size,
    _bucket_reso_steps,
    _network_module,
    _network_type_or_module,
    _network_args_read_by_module,
    _timestep_sampling,
    _blocks_to_swap,
    _optimizer_built,
    _target_frames,
)
