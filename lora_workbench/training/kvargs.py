"""`network_args` and `optimizer_args`: key=value pairs checked against what each network module and
optimizer really reads, never passed on as raw text.

sd-scripts splits each pair at "=" and gives the value to the network module as a string
(`int()`/`float()` there; LyCORIS reads booleans as "anything but 'false'") or, for optimizers,
through `ast.literal_eval`. So every value is parsed here by the key's kind, range-checked and
written back in one canonical form (True/False, 4, 0.01, 0.9,0.999) that both readers take as meant.
A key no module or optimizer reads, a key the chosen one does not read, and a key that has its own
setting are sentences naming the key and what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import numbers
from ..errors import ValidationError

# --------------------------------------------------------------------------- network types
# What network_type trains with: sd-scripts' own modules, or LyCORIS (`lycoris.kohya`, algo=...).
NETWORK_MODULES = {
    "lora": "networks.lora",
    "locon": "networks.lora",
    "dylora": "networks.dylora",
    "lycoris_locon": "lycoris.kohya",
    "lycoris_loha": "lycoris.kohya",
    "lycoris_lokr": "lycoris.kohya",
    "lycoris_ia3": "lycoris.kohya",
    "lycoris_dylora": "lycoris.kohya",
    "lycoris_glora": "lycoris.kohya",
    "lycoris_diag_oft": "lycoris.kohya",
    "lycoris_boft": "lycoris.kohya",
    "lycoris_full": "lycoris.kohya",
}
NETWORK_TYPES = tuple(NETWORK_MODULES)
LYCORIS_TYPES = tuple(t for t in NETWORK_TYPES if t.startswith("lycoris_"))
CONV_TYPES = ("locon", "dylora", *LYCORIS_TYPES)  # conv_dim means something to these
DYLORA_TYPES = ("dylora", "lycoris_dylora")
LORA_MODULE_TYPES = ("lora", "locon")
LYCORIS_PRESETS = (  # lycoris.config.PRESET (a preset may also be a file path there: never accepted here)
    "full",
    "full-lin",
    "attn-mlp",
    "attn-only",
    "unet-only",
    "unet-transformer-only",
    "unet-convblock-only",
)
LR_WEIGHT_PRESETS = ("cosine", "sine", "linear", "reverse_linear", "zeros")  # networks.lora block weights


def lycoris_algo(network_type: str) -> str:
    """LyCORIS' algo name for a lycoris_* network type (lycoris_diag_oft -> diag-oft)."""
    return network_type[len("lycoris_") :].replace("_", "-")


# --------------------------------------------------------------------------- what a key takes
@dataclass(frozen=True)
class Arg:
    """One key: its kind of value, bounds, and which network types / optimizers read it."""

    kind: str  # bool | int | float | floats | ints | choice | lr_weight
    applies: tuple[str, ...]
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    count: tuple[int, int] = (1, 64)  # floats/ints: how many numbers


_LORAPLUS = ("lora", "locon", "dylora", *LYCORIS_TYPES)
NETWORK_ARGS: dict[str, Arg] = {
    "block_dims": Arg("ints", LORA_MODULE_TYPES, "rank per block (25 for SD, 23 for SDXL)", 1, 1024),
    "block_alphas": Arg("floats", LORA_MODULE_TYPES, "alpha per block", 0, 1024),
    "conv_block_dims": Arg("ints", LORA_MODULE_TYPES, "conv rank per block", 1, 1024),
    "conv_block_alphas": Arg("floats", LORA_MODULE_TYPES, "conv alpha per block", 0, 1024),
    "down_lr_weight": Arg("lr_weight", LORA_MODULE_TYPES, "lr weight of the down blocks", 0, 10),
    "mid_lr_weight": Arg("floats", LORA_MODULE_TYPES, "lr weight of the middle block", 0, 10),
    "up_lr_weight": Arg("lr_weight", LORA_MODULE_TYPES, "lr weight of the up blocks", 0, 10),
    "block_lr_zero_threshold": Arg("float", LORA_MODULE_TYPES, "blocks below it are not trained", 0, 10),
    "loraplus_lr_ratio": Arg("float", _LORAPLUS, "LoRA+ lr ratio of the up weights", 0, 1e4),
    "loraplus_unet_lr_ratio": Arg("float", _LORAPLUS, "LoRA+ ratio, U-Net only", 0, 1e4),
    "loraplus_text_encoder_lr_ratio": Arg("float", _LORAPLUS, "LoRA+ ratio, text encoder only", 0, 1e4),
    "preset": Arg("choice", LYCORIS_TYPES, "which layers LyCORIS trains", choices=LYCORIS_PRESETS),
    "use_tucker": Arg("bool", LYCORIS_TYPES, "Tucker decomposition of conv layers"),
    "use_scalar": Arg("bool", LYCORIS_TYPES, "train an extra scalar"),
    "train_norm": Arg("bool", LYCORIS_TYPES, "also train norm layers"),
    "bypass_mode": Arg("bool", LYCORIS_TYPES, "bypass mode (for quantized bases)"),
    "dora_wd": Arg("bool", LYCORIS_TYPES, "DoRA weight decomposition"),
    "wd_on_output": Arg("bool", LYCORIS_TYPES, "DoRA decomposition on the output side"),
    "rs_lora": Arg("bool", LYCORIS_TYPES, "rank-stabilized scaling"),
    "factor": Arg("int", ("lycoris_lokr",), "LoKr factor (-1 = automatic)", -1, 1024),
    "decompose_both": Arg("bool", ("lycoris_lokr",), "LoKr: decompose both matrices"),
    "full_matrix": Arg("bool", ("lycoris_lokr",), "LoKr: full matrix"),
    "unbalanced_factorization": Arg("bool", ("lycoris_lokr",), "LoKr: unbalanced factorization"),
    "constraint": Arg("float", ("lycoris_diag_oft", "lycoris_boft"), "OFT constraint", 0, 1e4),
    "rescaled": Arg("bool", ("lycoris_diag_oft", "lycoris_boft"), "OFT: rescaled"),
}
# Keys that are settings of their own: one place per value.
NETWORK_ARG_SETTINGS = {
    "conv_dim": "conv_dim",
    "conv_alpha": "conv_alpha",
    "rank_dropout": "rank_dropout",
    "module_dropout": "module_dropout",
    "dropout": "network_dropout",
    "unit": "dylora_unit",
    "block_size": "dylora_unit",
    "algo": "network_type",
}

# What each sd-scripts module reads of NETWORK_ARGS when network_type is lora (networks/*.py @ 48d368f:
# the kwargs.get(...) of create_network); the DiT families' own keys (train_blocks, split_qkv, ...) are
# not offered yet. The rank/module dropout settings are read by the same modules as loraplus but oft.
_SD_BLOCK_KEYS = tuple(k for k, a in NETWORK_ARGS.items() if a.applies == LORA_MODULE_TYPES)
_LORAPLUS_KEYS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
MODULE_READS: dict[str, tuple[str, ...]] = {
    "networks.lora": (*_SD_BLOCK_KEYS, *_LORAPLUS_KEYS),
    "networks.lora_fa": _SD_BLOCK_KEYS,
    "networks.dylora": _LORAPLUS_KEYS,
    "networks.oft": (),
    "networks.oft_flux": (),
    **{
        m: _LORAPLUS_KEYS
        for m in (
            "networks.lora_sd3",
            "networks.lora_flux",
            "networks.lora_lumina",
            "networks.lora_hunyuan_image",
            "networks.lora_anima",
        )
    },
}
NO_RANK_DROPOUT = ("networks.oft", "networks.oft_flux", "networks.dylora")  # they ignore rank/module dropout
NO_MAX_NORM = ("networks.oft", "networks.oft_flux", "networks.dylora")  # no apply_max_norm_regularization

_ADAM = ("AdamW", "AdamW8bit", "PagedAdamW", "PagedAdamW8bit", "PagedAdamW32bit")
_LION = ("Lion", "Lion8bit", "PagedLion8bit")
_SGD = ("SGDNesterov", "SGDNesterov8bit")
_DADAPT = (
    "DAdaptation",
    "DAdaptAdaGrad",
    "DAdaptAdam",
    "DAdaptAdan",
    "DAdaptAdanIP",
    "DAdaptLion",
    "DAdaptSGD",
)
_DADAPT_ADAM = ("DAdaptation", "DAdaptAdam")
_FREE = ("AdamWScheduleFree", "RAdamScheduleFree", "SGDScheduleFree")
_BETAS = (*_ADAM, *_LION, "Prodigy", "DAdaptation", "DAdaptAdam", "DAdaptAdan", "DAdaptAdanIP", "DAdaptLion")
_BNB = tuple(o for o in (*_ADAM, *_LION, *_SGD) if "8bit" in o or o.startswith("Paged"))
# The optimizers' own keyword arguments (torch, bitsandbytes, lion-pytorch, prodigyopt, dadaptation,
# transformers' Adafactor, schedulefree), as sd-scripts' pinned requirements install them.
OPTIMIZER_ARGS: dict[str, Arg] = {
    "weight_decay": Arg("float", (), "weight decay", 0, 10),
    "betas": Arg("floats", (*_BETAS, *_FREE[:2]), "beta1,beta2 (DAdaptAdan: 3 betas)", 0, 1, count=(2, 3)),
    "eps": Arg(
        "floats",
        (
            *_ADAM,
            "Prodigy",
            *_DADAPT_ADAM,
            "DAdaptAdan",
            "DAdaptAdanIP",
            "DAdaptAdaGrad",
            *_FREE[:2],
            "Adafactor",
        ),
        "epsilon (Adafactor: two numbers)",
        0,
        1,
        count=(1, 2),
    ),
    "amsgrad": Arg("bool", _ADAM, "AMSGrad variant"),
    "momentum": Arg("float", (*_SGD, "DAdaptAdaGrad", "DAdaptSGD", "SGDScheduleFree"), "momentum", 0, 1),
    "dampening": Arg("float", _SGD, "momentum dampening", 0, 1),
    "decouple": Arg("bool", ("Prodigy", *_DADAPT_ADAM), "decoupled (AdamW-style) weight decay"),
    "use_bias_correction": Arg("bool", ("Prodigy", *_DADAPT_ADAM), "Adam bias correction"),
    "safeguard_warmup": Arg("bool", ("Prodigy",), "avoid issues during warm-up"),
    "d0": Arg("float", ("Prodigy", *_DADAPT), "initial D estimate", 0, 1),
    "d_coef": Arg("float", ("Prodigy",), "scales the estimated step size", 0, 100),
    "growth_rate": Arg(
        "float",
        ("Prodigy", *_DADAPT_ADAM, "DAdaptAdan", "DAdaptAdanIP", "DAdaptAdaGrad", "DAdaptSGD"),
        "limit on D growth per step",
        0,
        math.inf,
    ),
    "beta3": Arg("float", ("Prodigy",), "Prodigy's beta3", 0, 1),
    "slice_p": Arg("int", ("Prodigy",), "Prodigy: estimate D on every p-th element", 1, 1024),
    "log_every": Arg("int", _DADAPT, "log D every N steps (0 = off)", 0, 1_000_000),
    "no_prox": Arg("bool", ("DAdaptAdan", "DAdaptAdanIP"), "DAdaptAdan: no proximal update"),
    "decoupled_weight_decay": Arg("bool", ("Lion",), "Lion: decoupled weight decay"),
    "scale_parameter": Arg("bool", ("Adafactor",), "Adafactor: scale by parameter RMS"),
    "relative_step": Arg("bool", ("Adafactor",), "Adafactor: time-dependent learning rate"),
    "warmup_init": Arg("bool", ("Adafactor",), "Adafactor: warm-up initialisation"),
    "clip_threshold": Arg("float", ("Adafactor",), "Adafactor: update clipping", 0, 100),
    "decay_rate": Arg("float", ("Adafactor",), "Adafactor: decay rate", -10, 10),
    "beta1": Arg("float", ("Adafactor",), "Adafactor: first moment", 0, 1),
    "warmup_steps": Arg("int", ("AdamWScheduleFree", "SGDScheduleFree"), "schedule-free warm-up", 0, 10**7),
    "r": Arg("float", _FREE, "schedule-free polynomial weighting", 0, 100),
    "weight_lr_power": Arg("float", _FREE, "schedule-free weight power", 0, 100),
    "percentile_clipping": Arg("int", _BNB, "bitsandbytes: clip by percentile", 1, 100),
    "block_wise": Arg("bool", _BNB, "bitsandbytes: block-wise quantisation"),
    "min_8bit_size": Arg("int", _BNB, "bitsandbytes: smallest tensor kept in 8 bit", 0, 10**9),
}

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_VALUE_RE = re.compile(r"[A-Za-z0-9_.+,-]{1,200}")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


# --------------------------------------------------------------------------- parsing
def unwrap(value: str) -> str:
    """A value as sd-scripts' `ast.literal_eval` reads it, without the Python dress: quotes around it
    ('0.95,0.98') and a tuple's or list's brackets ((0.9,0.99), [0.9,0.99,]) come off, so the value
    is checked like the bare form and written back as `0.9,0.99` (which literal_eval makes a tuple)."""
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        v = v[1:-1].strip()
    if len(v) >= 2 and (v[0], v[-1]) in (("(", ")"), ("[", "]")):
        v = v[1:-1].strip().rstrip(",")
    return v


def split_pairs(text: str, setting: str) -> list[tuple[str, str]]:
    """`key=value` pairs from text, separated by spaces or new lines; a pair or a value may be in
    double quotes (as the kohya_ss GUI writes them), a value in single quotes or a tuple's brackets
    (as sd-scripts' literal_eval takes them). Syntax only: keys are checked by `normalize`."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for token in str(text).split():
        token = token.strip('"')
        key, sep, value = token.partition("=")
        value = unwrap(value.strip('"'))
        if not sep or not _KEY_RE.fullmatch(key):
            raise ValidationError(
                f"{setting}: {token!r} is not a key=value pair; write pairs like 'weight_decay=0.01', "
                f"separated by spaces."
            )
        if not _VALUE_RE.fullmatch(value):
            raise ValidationError(
                f"{setting}: the value of {key} ({value!r}) may only hold letters, digits and . , + - _ "
                f"(no spaces, quotes or '=')."
            )
        if key in seen:
            raise ValidationError(f"{setting}: {key} is given twice; keep one.")
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _number(text: str, integer: bool) -> float:
    if not integer:
        try:
            return numbers.parse_float(text)
        except numbers.OutOfRange as exc:
            raise ValueError(f"a finite number a float holds: {exc}") from None
        except ValueError:
            raise ValueError("a number") from None
    try:
        return int(text)
    except ValueError:
        raise ValueError("a whole number") from None


def _fmt(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _numbers(arg: Arg, text: str, integer: bool) -> str:
    parts = text.split(",")
    lo, hi = arg.count
    if not lo <= len(parts) <= hi:
        raise ValueError(f"{lo} to {hi} numbers separated by commas" if hi > lo else f"{lo} numbers")
    values = [_number(p, integer) for p in parts]
    _check_range(arg, values)
    return ",".join(_fmt(v) for v in values)


def _check_range(arg: Arg, values: Iterable[float]) -> None:
    for v in values:
        if (arg.low is not None and v < arg.low) or (arg.high is not None and v > arg.high):
            raise ValueError(f"between {_fmt(arg.low)} and {_fmt(arg.high)}")


def _bool(text: str) -> str:
    low = text.lower()
    if low in _TRUE | _FALSE:
        return "True" if low in _TRUE else "False"
    raise ValueError("True or False")


def _lr_weight(arg: Arg, text: str) -> str:
    name, plus, offset = text.partition("+")
    if name in LR_WEIGHT_PRESETS:
        return name + (plus + _fmt(_number(offset, False)) if plus else "")
    try:
        return _numbers(arg, text, False)
    except ValueError:
        raise ValueError(f"numbers separated by commas, or one of {', '.join(LR_WEIGHT_PRESETS)}") from None


def canonical(arg: Arg, text: str) -> str:
    """The value in the one form the reader takes as meant; ValueError says what it should be."""
    if arg.kind == "bool":
        return _bool(text)
    if arg.kind in ("int", "float"):
        value = _number(text, arg.kind == "int")
        _check_range(arg, [value])
        return _fmt(value)
    if arg.kind in ("floats", "ints"):
        return _numbers(arg, text, arg.kind == "ints")
    if arg.kind == "lr_weight":
        return _lr_weight(arg, text)
    if text in arg.choices:
        return text
    raise ValueError(f"one of {', '.join(arg.choices)}")


# --------------------------------------------------------------------------- checking
def _known(key: str, setting: str, table: Mapping[str, Arg], own: Mapping[str, str]) -> Arg:
    if key in own:
        raise ValidationError(f"{setting}: {key} has its own setting; set {own[key]} instead.")
    if key not in table:
        raise ValidationError(
            f"{setting}: {key} is not a key sd-scripts' networks or optimizers read here; known keys: "
            f"{', '.join(sorted(table))}."
        )
    return table[key]


def normalize(
    text: str,
    setting: str,
    table: Mapping[str, Arg],
    own: Mapping[str, str] | None = None,
    target: str | None = None,
    target_label: str = "",
) -> list[str]:
    """Canonical `key=value` strings; each key must be known, and read by `target` when given."""
    out = []
    for key, raw in split_pairs(text, setting):
        arg = _known(key, setting, table, own or {})
        if target is not None and arg.applies and target not in arg.applies:
            readers = ", ".join(arg.applies)
            raise ValidationError(
                f"{setting}: {key} is not read by {target_label or target}; it applies to {readers}."
            )
        try:
            out.append(f"{key}={canonical(arg, raw)}")
        except ValueError as exc:
            raise ValidationError(f"{setting}: {key} is {raw!r}; it must be {exc}.") from None
    return out


def network_args(text: str, network_type: str | None = None) -> list[str]:
    return normalize(text, "network_args", NETWORK_ARGS, NETWORK_ARG_SETTINGS, network_type,
                     f"network_type {network_type}")  # fmt: skip


def optimizer_args(text: str, optimizer: str | None = None) -> list[str]:
    return normalize(text, "optimizer_args", OPTIMIZER_ARGS, None, optimizer, f"the {optimizer} optimizer")
