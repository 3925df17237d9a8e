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

from .... import numbers, paths
from ....errors import ValidationError
from ....modelfiles import families as file_families
from ... import kvargs
from ...options import coerce
from ...settings import SETTING, SETTINGS, Where
from ...validation import check_setting

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
    "multires_noise_iterations", "multires_noise_discount", "debiased_estimation_loss", "min_timestep",
    "max_timestep", "adaptive_noise_scale", "noise_offset_random_strength", "max_token_length",
    "bucket_no_upscale", "bucket_reso_steps", "full_bf16", "full_fp16",
)  # fmt: skip
# The family options (FLUX.1, SD3): GUI key -> setting, taken when the config is for a family that reads it.
FAMILY_KEYS = {
    key: key
    for key in (
        "t5xxl_max_token_length", "apply_t5_attn_mask", "guidance_scale", "discrete_flow_shift",
        "timestep_sampling", "model_prediction_type", "blocks_to_swap", "fp8_base",
    )
}  # fmt: skip
# A setting the config writes for another one of its settings: given explicitly, the leader takes it too.
FOLLOWS = {"optimizer_args": "optimizer"}
# GUI LoRA_type of the FLUX.1 page -> network_module ("auto": the family's own LoRA, networks.lora_flux).
FLUX_TYPES = {"Flux1": "auto", "Flux1 OFT": "networks.oft_flux"}
FULL_MATRIX_DIM = 100000  # LyCORIS' (and the GUI presets') way to say "full rank" for LoKr
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
        ("flux1_checkbox", "sd3_checkbox"),
        "the base model decides the family and script (read from the file)",
    ),
    "flux1_cache_text_encoder_outputs_to_disk": "where the cache is kept; changes nothing",
    "flux1_cache_text_encoder_outputs": "a FLUX.1 option, read when the config is for FLUX.1",
    "sdxl_cache_text_encoder_outputs": "an SDXL option, read when the config is for SDXL",
    "mem_eff_save": "memory while saving only; changes nothing",
    "vae_batch_size": "speed of latent caching only; changes nothing",
    "huber_c": "read only with loss_type huber or smooth_l1",
    "huber_schedule": "read only with loss_type huber or smooth_l1",
    "sdxl": "the base model decides the family and script (read from the checkpoint)",
    "v2": "the base model decides SD 2.x (read from the checkpoint)",
    "model_list": "the workflow picks the base model",
    "sdxl_no_half_vae": "set automatically for SDXL in fp16",
    "persistent_data_loader_workers": "set automatically when data_loader_workers > 0",
    "multi_gpu": "follows from num_processes > 1 on a GPU",
    "save_model_as": "always safetensors here",
    "mem_eff_attn": "use attention sdpa (the default) instead",
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
    "rank_dropout_scale": "LyCORIS 4 does not read it",
    "train_on_input": "LyCORIS 4 does not read it (its ia3 preset sets it)",
    "unit": "only DyLoRA reads it",
    "conv_dims": "GUI-only",
    "conv_alphas": "GUI-only",
    "dynamo_backend": "accelerate runs with dynamo off here",
    "dynamo_mode": "accelerate runs with dynamo off here",
    "dynamo_use_dynamic": "accelerate runs with dynamo off here",
    "dynamo_use_fullgraph": "accelerate runs with dynamo off here",
    "epoch": "max_train_epochs gives the epochs",
    "noise_offset_type": "decides between noise_offset and multires noise (see those keys)",
    "highvram": "not offered here",
    "lowvram": "not offered here",
    "sample_every_n_steps": "samples are made every N epochs here",
}
_OFF = "; set it off in the config, or train without it"
_FLUX_ARGS = "FLUX LoRA network arguments are not offered here" + _OFF
# Keys with no setting here that change training when on: refused unless off (their off values beside
# the usual empty/0/false ones), with what to do.
UNSUPPORTED: dict[str, tuple[tuple[str, ...], str]] = {
    "loss_type": (("l2",), "is a loss this pack does not offer (it trains with l2)" + _OFF),
    "ip_noise_gamma": ((), "is input-perturbation noise, not a setting here" + _OFF),
    "ip_noise_gamma_random_strength": ((), "is input-perturbation noise, not a setting here" + _OFF),
    "masked_loss": ((), "needs mask images, which this pack's datasets do not have" + _OFF),
    "prior_loss_weight": (("1", "1.0"), "weights regularization images and only 1 is offered here" + _OFF),
    "scale_v_pred_loss_like_noise_pred": ((), "is not a setting here" + _OFF),
    "v_pred_like_loss": ((), "is not a setting here" + _OFF),
    "weighted_captions": ((), "caption weighting is not a setting here" + _OFF),
    "no_token_padding": ((), "is not a setting here" + _OFF),
    "stop_text_encoder_training": ((), "stopping the text encoder early is not a setting here" + _OFF),
    "stop_text_encoder_training_pct": ((), "stopping the text encoder early is not a setting here" + _OFF),
    "lr_scheduler_type": ((), "custom scheduler classes are not offered (pick lr_scheduler)" + _OFF),
    "lr_scheduler_args": ((), "scheduler arguments are not offered here" + _OFF),
    "split_mode": ((), "FLUX split mode is not offered here" + _OFF),
    "train_blocks": (("all",), "FLUX block selection is not offered here" + _OFF),
    "fp8_base_unet": ((), "is not offered here (fp8_base is)" + _OFF),
    "extra_accelerate_launch_args": ((), "free command-line text is never passed to accelerate" + _OFF),
    **dict.fromkeys(
        (
            "split_qkv",
            "train_t5xxl",
            "enable_all_linear",
            "img_attn_dim",
            "img_mlp_dim",
            "img_mod_dim",
            "single_dim",
            "txt_attn_dim",
            "txt_mlp_dim",
            "txt_mod_dim",
            "single_mod_dim",
            "in_dims",
            "train_double_block_indices",
            "train_single_block_indices",
            "ggpo_beta",
            "ggpo_sigma",
        ),
        ((), _FLUX_ARGS),
    ),  # fmt: skip
}
# additional_parameters: sd-scripts options that change nothing the pack keeps, and options that are
# settings here by their sd-scripts name.
ARG_SKIPS = {
    "log_prefix": "names the logs only (TensorBoard runs are named after the run folder)",
    "log_with": SKIP_REASONS["log_with"],
    "log_tracker_name": SKIP_REASONS["log_tracker_name"],
    "console_log_level": "terminal output only",
    "console_log_simple": "terminal output only",
    "logging_dir": _PATH,
    "output_dir": _PATH,
    "vae_batch_size": SKIP_REASONS["vae_batch_size"],
    "persistent_data_loader_workers": SKIP_REASONS["persistent_data_loader_workers"],
}
ARG_SETTINGS = {
    **{
        s.sd_name: s.name
        for s in SETTINGS
        if s.sd_name and s.emit != "custom" and s.where in (Where.CONFIG, Where.DATASET)
    },
    **{
        name: name
        for name in (
            "text_encoder_lr",
            "min_bucket_reso",
            "max_bucket_reso",
            "caption_extension",
            "optimizer_args",
            "network_args",
            "bucket_no_upscale",
            "bucket_reso_steps",
        )
    },  # fmt: skip
    "train_batch_size": "batch_size",
    "max_data_loader_n_workers": "data_loader_workers",
    "optimizer_type": "optimizer",
}
_PREFIX_SKIPS = (
    ("huggingface_", "uploads are not done by this pack"),
    ("metadata_", "model metadata is not a setting here"),
)


@dataclass
class GuiImport:
    """Settings from one GUI config and what became of each of its keys. `gives` names the settings a
    used, mapped or refused key sets (or would set): a setting the user gives explicitly (a flag, an
    option node) overrides the key, and settles a refusal."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    used: list[tuple[str, str]] = field(default_factory=list)  # (gui key, "setting = value")
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (gui key, "setting = value ...")
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (gui key, why): changes nothing
    refused: list[tuple[str, str]] = field(default_factory=list)  # (gui key, why): changes training
    notes: list[str] = field(default_factory=list)  # about the config as a whole
    gives: dict[str, tuple[str, ...]] = field(default_factory=dict)  # gui key -> settings
    family: str = ""  # the model family the config says it is for ("" = SD 1.x or not said)

    def counts(self) -> tuple[int, int, int]:
        return len(self.used), len(self.mapped), len(self.skipped)

    def _explicit_of(self, key: str, explicit: Mapping[str, str]) -> list[str]:
        return [name for name in self.gives.get(key, ()) if name in explicit]

    def widened(self, explicit: Mapping[str, str] | None = None) -> dict[str, str]:
        """The explicit settings, plus those that go with one of them: the config's optimizer args
        were written for its optimizer, so another optimizer given explicitly takes them out too."""
        out = dict(explicit or {})
        for setting, leader in FOLLOWS.items():
            if leader in out and setting not in out:
                out[setting] = f"{out[leader]} (the config's {setting} were for its {leader})"
        return out

    def open_refusals(self, explicit: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """The refused keys no explicit setting settles."""
        explicit = self.widened(explicit)
        return [
            (key, why)
            for key, why in self.refused
            if not (self.gives.get(key) and len(self._explicit_of(key, explicit)) == len(self.gives[key]))
        ]

    def settings(self, explicit: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The config's settings without those given explicitly (those win)."""
        explicit = self.widened(explicit)
        return {k: v for k, v in self.values.items() if k not in explicit}

    def report(self, explicit: Mapping[str, str] | None = None) -> str:
        """What the import did, one line per key, and which side won where a setting was also given
        explicitly (`explicit`: setting -> who gave it): for the node's text output and the CLI."""
        explicit = self.widened(explicit)
        over = []
        for key, _what in [*self.used, *self.mapped, *self.refused]:
            names = self._explicit_of(key, explicit)
            if names:
                over.append((key, "; ".join(f"{n} from {explicit[n]} wins" for n in names)))
        overridden = {k for k, _ in over}
        open_refused = self.open_refusals(explicit)
        used = [(k, w) for k, w in self.used if k not in overridden]
        mapped = [(k, w) for k, w in self.mapped if k not in overridden]
        lines = [
            f"kohya_ss config {self.source}: {len(used)} used, {len(mapped)} mapped, {len(over)} overridden, "
            f"{len(open_refused)} refused, {len(self.skipped)} skipped"
        ]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  used       {key}: {what}" for key, what in used]
        lines += [f"  mapped     {key}: {what}" for key, what in mapped]
        lines += [f"  overridden {key}: {what}" for key, what in over]
        lines += [f"  refused    {key}: {why}" for key, why in open_refused]
        lines += [f"  skipped    {key}: {why}" for key, why in self.skipped]
        return "\n".join(lines)

    def check(self, explicit: Mapping[str, str] | None = None, ignore_unsupported: bool = False) -> None:
        """Stop (a sentence per key) when the config asks for training this pack cannot give as meant,
        unless each such key is settled by an explicit setting or the user said to go on without them."""
        open_refused = self.open_refusals(explicit)
        if not open_refused or ignore_unsupported:
            return
        items = "; ".join(f"{key}: {why}" for key, why in open_refused)
        raise ValidationError(
            f"The kohya_ss config {self.source} asks for training this pack would not give as meant: "
            f"{items}. Set those settings yourself (a flag or an option node), or train without these keys "
            f"with --ignore-unsupported-keys (the GUI config node's ignore_unsupported_keys)."
        )


class _Importer:
    """One pass over a GUI config; each step takes the keys it understands."""

    def __init__(self, data: Mapping[str, Any], source: str):
        self.data = dict(data)
        self.out = GuiImport(source, family=_config_family(self.data))
        self.done: set[str] = set()

    # ---------------------------------------------------------------- helpers
    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def skip(self, key: str, why: str) -> None:
        if key in self.data and key not in self.done:
            self.done.add(key)
            self.out.skipped.append((key, why))

    def refuse(self, key: str, why: str, settings: tuple[str, ...] = ()) -> None:
        """A key that changes training and cannot be given as meant: the import stops on it unless a
        setting of `settings` is given explicitly or the user goes on without it."""
        if key not in self.done:
            self.done.add(key)
            self.out.refused.append((key, why))
            if settings:
                self.out.gives[key] = settings

    def take(self, key: str, setting: str, value: Any, *, mapped: bool = False, note: str = "") -> bool:
        """Give `setting` the value of GUI `key` if its checks pass (else refuse the key, saying why)."""
        return self.take_all(key, {setting: value}, mapped=mapped, note=note)

    def take_all(self, key: str, values: Mapping[str, Any], *, mapped: bool = True, note: str = "") -> bool:
        """Give several settings their values from one GUI key, all or none."""
        try:
            converted = {name: _convert(name, v) for name, v in values.items()}
            for name, v in converted.items():
                check_setting(SETTING[name], v)
        except (ValueError, ValidationError) as exc:
            self.refuse(key, f"{str(exc).rstrip('.')} (the config has {self.raw(key)!r})", tuple(values))
            return False
        self.out.values.update(converted)
        if key not in self.done:
            self.done.add(key)
            self.out.gives[key] = tuple(converted)
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
            self.family_keys,
            self.additional_parameters,
            self.unsupported,
            self.same_name,
        ):
            step()
        self.not_read_by_family()
        for key in self.data:
            self.skip(key, self._reason(key))
        return self.out

    def _reason(self, key: str) -> str:
        if key in SKIP_REASONS:
            return SKIP_REASONS[key]
        for prefix, why in _PREFIX_SKIPS:
            if key.startswith(prefix):
                return why
        if _is_off(self.raw(key)):
            return "no setting of this name here; off or empty in the config"
        return "no setting of this name here"

    def network(self) -> None:
        kind = self.raw("LoRA_type")
        if kind is None:
            return
        if str(kind) in FLUX_TYPES:
            module = FLUX_TYPES[str(kind)]
            if module == "auto":
                self.done.add("LoRA_type")
                self.out.mapped.append(
                    ("LoRA_type", "network_module auto (networks.lora_flux on a FLUX base)")
                )
            else:
                self.take("LoRA_type", "network_module", module, mapped=True)
            for key in ("conv_dim", "conv_alpha"):
                self.skip(key, "FLUX's LoRA has no conv layers")
            return
        net = LORA_TYPES.get(str(kind))
        if net is None:
            self.refuse(
                "LoRA_type",
                f"{kind} is not trained by this pack (LoRA, LoCon, DyLoRA, LyCORIS and FLUX.1 LoRA/OFT are); "
                f"set network_type",
                ("network_type",),
            )
            return
        self.take("LoRA_type", "network_type", net, mapped=True)
        if net == "lycoris_lokr":
            self.full_matrix()
        conv = self.raw("conv_dim")
        if net in kvargs.CONV_TYPES and _number(conv) and "conv_dim" not in self.done:
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
        for key in ("conv_dim", "conv_alpha"):
            self.skip(
                key, f"{kind} does not train conv layers" if net not in kvargs.CONV_TYPES else "0 = off"
            )
        if net in kvargs.DYLORA_TYPES and _number(self.raw("unit")):
            self.take("unit", "dylora_unit", self.raw("unit"), mapped=True)

    def full_matrix(self) -> None:
        """LyCORIS reads a dim of 100000 (any dim at least half a layer's side) as "full matrix": no
        low-rank factor and no alpha/dim scale. Passed as LyCORIS' own full_matrix=True, with the dims at
        the largest this pack takes (never below half a LoKr factor's side)."""
        dims = {k: _float(self.raw(k)) or 0 for k in ("network_dim", "conv_dim")}
        if dims["network_dim"] < FULL_MATRIX_DIM:
            if dims["conv_dim"] >= FULL_MATRIX_DIM:
                self.refuse(
                    "conv_dim",
                    f"{self.raw('conv_dim')} is LyCORIS' full-matrix conv with a low-rank network_dim "
                    f"{self.raw('network_dim')}, which LyCORIS' full_matrix cannot split; set conv_dim",
                    ("conv_dim",),
                )
            return
        full = SETTING["network_dim"].high
        note = "LyCORIS' full matrix: network_args full_matrix=True; alpha is unused"
        self.take("network_dim", "network_dim", full, mapped=True, note=note)
        self.done.add("network_alpha")
        self.out.mapped.append(("network_alpha", "unused with full matrices (LyCORIS scales by 1)"))
        if dims["conv_dim"] >= FULL_MATRIX_DIM:
            self.take("conv_dim", "conv_dim", full, mapped=True, note=note)
            self.done.add("conv_alpha")
            self.out.mapped.append(("conv_alpha", "unused with full matrices (LyCORIS scales by 1)"))
        self._add_network_args([("LoRA_type full matrix", "full_matrix=True")])

    def lycoris_options(self) -> None:
        net = self.out.values.get("network_type", "lora")
        pairs = []
        for key, (arg, default) in LYCORIS_OPTIONS.items():
            if key not in self.data or self.empty(key):
                continue
            try:
                value = kvargs.canonical(kvargs.NETWORK_ARGS[arg], str(self.raw(key)))
            except ValueError as exc:
                self.refuse(key, f"{arg} must be {exc}, not {self.raw(key)!r}", ("network_args",))
                continue
            applies = kvargs.NETWORK_ARGS[arg].applies
            if value == default or net not in applies:
                readers = (
                    "the LyCORIS network types" if applies == kvargs.LYCORIS_TYPES else "/".join(applies)
                )
                why = "LyCORIS' default" if value == default else f"only {readers} read it"
                self.skip(key, f"{why} (network_type is {net}); nothing written")
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
                self.refuse(key, f"network_type {net} does not read it; remove it or set network_type", ())
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
                self.refuse(key, str(exc).rstrip("."), ("network_args",))
                continue
            current = text
            self.done.add(key)
            self.out.gives[key] = ("network_args",)
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
        kept, odd, notes = optimizer_pairs(str(self.raw("optimizer_args")), self.out.values["optimizer"])
        if kept:
            self.take("optimizer_args", "optimizer_args", " ".join(kept), note="; ".join(notes))
        for item in odd:
            self.out.refused.append(("optimizer_args", item))
            self.out.gives["optimizer_args"] = ("optimizer_args",)
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
            self.skip("lr_warmup", "the constant scheduler takes no warmup (the GUI leaves it out too)")
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
        if not _truthy(self.raw("enable_bucket")):
            for key in ("bucket_no_upscale", "bucket_reso_steps", "min_bucket_reso", "max_bucket_reso"):
                self.skip(key, "buckets are off in the config")

    def noise(self) -> None:
        kind = str(self.raw("noise_offset_type") or "Original")
        if kind == "Multires":
            for key in ("noise_offset", "adaptive_noise_scale", "noise_offset_random_strength"):
                self.skip(key, "noise_offset_type is Multires")
        else:
            for key in ("multires_noise_iterations", "multires_noise_discount"):
                self.skip(key, "noise_offset_type is Original")
        if "noise_offset" in self.data and kind != "Multires" and not self.empty("noise_offset"):
            self.take("noise_offset", "noise_offset", self.raw("noise_offset"))
        if not self.out.values.get("noise_offset"):
            for key in ("adaptive_noise_scale", "noise_offset_random_strength"):
                if _is_off(self.raw(key)):
                    self.skip(key, "off, and noise_offset is 0")
        if kind == "Multires" and not _number(self.raw("multires_noise_iterations")):
            self.skip("multires_noise_discount", "no multires iterations")

    def text_encoder(self) -> None:
        lr = self.raw("text_encoder_lr")
        if lr not in ("", None) and _is_zero(lr):
            self.take("text_encoder_lr", "train_text_encoder", False, mapped=True, note="text_encoder_lr 0")
        clip = self.raw("clip_skip")
        if clip is not None and not self.empty("clip_skip"):
            if self.out.family not in ("", "sd1", "sd2"):
                self.skip("clip_skip", f"{_family_name(self.out.family)} does not use clip_skip")
            elif str(clip).strip() in ("0", "1"):
                self.skip("clip_skip", "1 = the last layer, sd-scripts' default (clip_skip 0 here)")
        if str(self.raw("max_token_length")).strip() in ("75", "75.0"):
            self.skip("max_token_length", "75 = sd-scripts' default")

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
        if _is_zero(self.raw("sample_every_n_epochs")):
            self.skip("sample_every_n_epochs", "0 = no samples by epoch (samples do not change the LoRA)")
            if _float(self.raw("sample_every_n_steps")) in (None, 0):
                self.skip("sample_prompts", "the config makes no samples (every 0 epochs and 0 steps)")

    def family_keys(self) -> None:
        """The family options (FLUX, SD3): taken when the config is for a family that reads them."""
        cache = self.raw(f"{self.out.family}_cache_text_encoder_outputs")
        if (
            self.out.family in ("sdxl", "flux1")
            and cache is not None
            and not self.empty(f"{self.out.family}_cache_text_encoder_outputs")
        ):
            self.take(
                f"{self.out.family}_cache_text_encoder_outputs",
                "cache_text_encoder_outputs",
                "on" if _truthy(cache) else ("off" if self.out.family == "flux1" else "auto"),
                mapped=True,
            )
        for key, setting in FAMILY_KEYS.items():
            if key not in self.data or self.empty(key):
                continue
            if _family_id(self.out.family) not in SETTING[setting].families:
                self.skip(key, f"a {_families_named(setting)} option and this config is not for one")
            else:
                self.take(key, setting, self.raw(key), mapped=key != setting)

    def additional_parameters(self) -> None:
        text = self.raw("additional_parameters")
        if text is None or self.empty("additional_parameters"):
            return
        try:  # the GUI drops double quotes and splits on spaces; shlex reads both forms alike
            words = shlex.split(str(text))
        except ValueError as exc:
            self.refuse("additional_parameters", f"not readable ({exc}); free text is never passed on")
            return
        self.done.add("additional_parameters")
        for flag, value in _flags(words):
            where = f"additional_parameters --{flag}" if flag else "additional_parameters"
            self.data[where] = value
            self.argument(where, flag, value)

    def argument(self, where: str, flag: str, value: Any) -> None:
        """One option of `additional_parameters`: a setting of ours by its sd-scripts name, or refused."""
        if flag in ARG_SKIPS:
            self.skip(where, ARG_SKIPS[flag])
        elif flag == "network_train_unet_only":
            self.take(where, "train_text_encoder", False, mapped=True)
        elif flag in ARG_SETTINGS:
            setting = ARG_SETTINGS[flag]
            self.take(where, setting, value if not isinstance(value, list) else " ".join(value), mapped=True)
        elif not flag:
            self.refuse(where, f"{value!r} is no --option; free text is never passed to sd-scripts")
        else:
            shown = "" if value is True else f" {' '.join(value) if isinstance(value, list) else value}"
            self.refuse(
                where,
                f"--{flag}{shown} would change the training and is not a setting here (free text is never "
                f"passed to sd-scripts); train without it or with sd-scripts directly",
            )

    def unsupported(self) -> None:
        """Keys with no setting here: refused when they ask for something, skipped when off."""
        for key, (off, what) in UNSUPPORTED.items():
            if key not in self.data or key in self.done:
                continue
            value = self.raw(key)
            if _is_off(value) or str(value).strip().lower() in off:
                self.skip(key, "off in the config; changes nothing here")
            else:
                self.refuse(key, f"{value!r} {what}")
        ext = str(self.raw("caption_extension") or "")
        if ext.strip() == ".none-use-foldername":
            self.refuse(
                "caption_extension",
                "'.none-use-foldername' is the GUI's 'use the folder name as caption', and this pack trains "
                "on the dataset's caption files (a subset without them trains on its folder's class "
                "tokens); set caption_extension to your captions' extension",
                ("caption_extension",),
            )

    def same_name(self) -> None:
        if _truthy(self.raw("dim_from_weights")):
            self.skip("dim_from_weights", "needs network_weights, and the config's path is not followed")
        for key in SAME_NAME:
            if key in self.data and key not in self.done and not self.empty(key):
                self.take(key, key, self.raw(key))

    def not_read_by_family(self) -> None:
        """A value the config's own family's trainer never reads changes nothing: skipped, not kept
        (FLUX's trainer ignores min_snr_gamma; taking it would fail the plan on a FLUX base)."""
        family = _family_id(self.out.family)
        if not self.out.family:
            return
        for bucket in (self.out.used, self.out.mapped):
            for key, what in list(bucket):
                names = self.out.gives.get(key, ())
                if names and all(family not in SETTING[n].families for n in names):
                    bucket.remove((key, what))
                    for n in names:
                        self.out.values.pop(n, None)
                    del self.out.gives[key]
                    self.out.skipped.append(
                        (key, f"{_family_name(self.out.family)}'s trainer does not read it (changes nothing)")
                    )


def optimizer_pairs(text: str, optimizer: str) -> tuple[list[str], list[str], list[str]]:
    """(kept pairs, refused items with why, notes) of the GUI's optimizer_args, one pair at a time, as
    sd-scripts reads them (the GUI drops double quotes and splits on spaces; sd-scripts splits each
    at "=" and literal_evals the value): one odd pair never costs the others."""
    kept, odd, notes = [], [], []
    tokens = str(text).replace('"', " ").split()
    if tokens and tokens[0] == "--optimizer_args":
        tokens = tokens[1:]
        notes.append("the leading --optimizer_args, a pasted flag name, left out")
    seen: set[str] = set()
    for token in _joined_brackets(tokens):
        key = token.partition("=")[0]
        try:
            if " " in token:
                raise ValidationError(
                    f"the GUI and sd-scripts split the args at spaces, so sd-scripts would stop on it; write "
                    f"it without spaces ({token.replace(' ', '')})"
                )
            if key in seen:
                raise ValidationError(f"{key} is given twice (sd-scripts would keep the last); keep one.")
            kept += kvargs.optimizer_args(token, optimizer)
            seen.add(key)
        except ValidationError as exc:
            odd.append(f"{token!r}: {str(exc).removeprefix('optimizer_args: ').rstrip('.')}")
    return kept, odd, notes


def _joined_brackets(tokens: list[str]) -> list[str]:
    """Tokens, with a tuple written with spaces (betas=(0.9, 0.99)) put back together to be named."""
    out: list[str] = []
    for token in tokens:
        if out and out[-1].count("(") + out[-1].count("[") > out[-1].count(")") + out[-1].count("]"):
            out[-1] += " " + token
        else:
            out.append(token)
    return out


def _flags(words: list[str]) -> list[tuple[str, Any]]:
    """(option, value) pairs of a command-line word list: True for a bare flag, the text after "=" or
    the one word after it, a list of the words when several follow (--lr_scheduler_args a=1 b=2); a
    word before any option comes as ("", word)."""
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            out.append(("", word))
            i += 1
            continue
        name, eq, value = word[2:].partition("=")
        i += 1
        if eq:
            out.append((name, value))
            continue
        values = []
        while i < len(words) and not words[i].startswith("--"):
            values.append(words[i])
            i += 1
        out.append((name, True if not values else values[0] if len(values) == 1 else values))
    return out


def _is_off(value: Any) -> bool:
    """Empty, 0 or false: how the GUI says a key is not used."""
    if value is None or value is False:
        return True
    text = str(value).strip().lower()
    return text in ("", "false", "none", "no", "off") or _float(text) == 0


def _config_family(data: Mapping[str, Any]) -> str:
    """The family a GUI config says it is for, by its own switches ("" = SD 1.x or not said)."""
    if _truthy(data.get("flux1_checkbox")) or str(data.get("LoRA_type", "")).startswith("Flux1"):
        return "flux1"
    for key, family in (("sd3_checkbox", "sd3"), ("sdxl", "sdxl"), ("v2", "sd2")):
        if _truthy(data.get(key)):
            return family
    return ""


def _family_id(config_family: str) -> str:
    return {"flux1": "flux", "": "sd1"}.get(config_family, config_family)


def _family_name(config_family: str) -> str:
    return file_families.name(_family_id(config_family))


def _families_named(setting: str) -> str:
    return "/".join(file_families.name(f) for f in SETTING[setting].families)


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
