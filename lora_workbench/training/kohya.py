"""A training spec -> the sd-scripts command line and its `--config_file` TOML, validated before launch.

Pure: nothing here starts a process or imports torch. `validate()` turns every value that would make
a run fail (or silently do something else) into a sentence naming the setting; `build_command()`
resolves a spec against a dataset, a detected base model and an sd-scripts install into a `Command`
(argv, config TOML, sample prompts file) that `train.py` writes beside the output and runs.

Free-form text never becomes an argument: prompts go into a file we write, the output name is
restricted to [A-Za-z0-9._-], every number is range-checked, and there is no "extra args" input.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import paths
from ..datatypes import LoraDataset
from ..errors import ValidationError
from ..modelfiles.detect import ARCHES, SCRIPT_FOR_ARCH, ModelInfo

TOKENIZER_CACHE_ENV = "LORA_WORKBENCH_TOKENIZER_CACHE"

# What sd-scripts accepts (library/train_util.py @ 48d368f); anything else fails late or silently.
SAMPLERS = (
    "ddim",
    "pndm",
    "lms",
    "euler",
    "euler_a",
    "heun",
    "dpm_2",
    "dpm_2_a",
    "dpmsolver",
    "dpmsolver++",
    "dpmsingle",
    "k_lms",
    "k_euler",
    "k_euler_a",
    "k_dpm_2",
    "k_dpm_2_a",
)
OPTIMIZERS = (
    "AdamW",
    "AdamW8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "PagedAdamW32bit",
    "Lion",
    "Lion8bit",
    "PagedLion8bit",
    "SGDNesterov",
    "SGDNesterov8bit",
    "DAdaptation",
    "DAdaptAdaGrad",
    "DAdaptAdam",
    "DAdaptAdan",
    "DAdaptAdanIP",
    "DAdaptLion",
    "DAdaptSGD",
    "Adafactor",
    "Prodigy",
    "AdamWScheduleFree",
    "RAdamScheduleFree",
    "SGDScheduleFree",
)
GPU_ONLY_OPTIMIZERS = tuple(o for o in OPTIMIZERS if "8bit" in o or o.startswith("Paged"))  # bitsandbytes
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "inverse_sqrt",
)
MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")
SAVE_PRECISIONS = ("fp16", "bf16", "float")
SCRIPTS = ("auto", "train_network.py", "sdxl_train_network.py")
MODEL_TYPES = ("auto", *ARCHES)
LAUNCHERS = ("accelerate", "python")
DEVICES = ("auto", "gpu", "cpu")
ATTENTIONS = ("sdpa", "xformers", "none")
STEP_RULES = ("seed", "epochs")
BUCKETS = ("dataset", "on", "off")
OUTPUT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
CAPTION_EXT_RE = re.compile(r"^\.[A-Za-z0-9_-]{1,16}$")
GPU_IDS_RE = re.compile(r"^(all|\d+(,\d+)*)$")
HOST_RE = re.compile(r"^[A-Za-z0-9\[][A-Za-z0-9.:\-\[\]]{0,254}$")  # never a leading "-": no option injection


@dataclass
class TrainSpec:
    """Everything that decides one LoRA training run (the seed's 13 prompts and their defaults first)."""

    # The seed's questions, with its defaults.
    epochs: int = 3
    width: int = 512
    height: int = 512
    seed: int = 12345
    network_dim: int = 128
    network_alpha: float = 128.0
    learning_rate: float = 1e-4
    unet_lr: float = 1e-4
    text_encoder_lr: float = 5e-5
    noise_offset: float = 0.0
    sample_sampler: str = "dpm_2"
    script: str = "auto"  # auto (from the base model) | train_network.py | sdxl_train_network.py
    model_type: str = "auto"  # auto | sd1 | sd2 | sdxl (needed for .ckpt files)
    # Run shape.
    output_name: str = ""  # "" = the project folder's name; [A-Za-z0-9._-] only
    batch_size: int = 0  # 0 = the dataset's batch size
    save_every_n_epochs: int = 1
    max_train_steps: int = 0  # 0 = from step_rule
    step_rule: str = "seed"  # seed: steps per epoch x epochs; epochs: --max_train_epochs (sd-scripts counts)
    train_text_encoder: bool = True
    # Optimisation.
    optimizer: str = "AdamW"
    lr_scheduler: str = "cosine_with_restarts"
    lr_warmup_steps: int = 0
    mixed_precision: str = "auto"  # auto: fp16 on a GPU, no on the CPU
    save_precision: str = "fp16"
    # Dataset handling (the dataset node decides the rest).
    caption_extension: str = ""  # "" = the dataset's
    buckets: str = "dataset"  # dataset | on | off
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    # Samples (written into a prompts file; never passed as arguments).
    sample_prompts: str = ""  # one prompt per line; empty = no samples
    sample_every_n_epochs: int = 1
    sample_steps: int = 20
    # The seed's fixed flags, switchable.
    gradient_checkpointing: bool = True
    cache_latents: bool = True  # off when the dataset uses color_aug or random_crop
    cache_latents_to_disk: bool = True
    lowram: bool = False
    attention: str = "sdpa"  # sdpa | xformers | none
    v_parameterization: bool = False  # SD 2.x 768-v models
    data_loader_workers: int = 0
    # Where and how it runs.
    device: str = "auto"  # auto | gpu | cpu
    launcher: str = "accelerate"  # accelerate | python
    cpu_threads: int = 2  # accelerate --num_cpu_threads_per_process
    num_processes: int = 1
    gpu_ids: str = ""  # e.g. "0,1"; "" = accelerate's choice
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str = ""
    main_process_port: int = 0  # 0 = accelerate's default
    tokenizer_cache_dir: str = ""  # "" = $LORA_WORKBENCH_TOKENIZER_CACHE or settings tokenizer_cache_dir

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# (field, low, high, what to do) for the numbers; high None = unbounded.
_RANGES: tuple[tuple[str, float, float | None], ...] = (
    ("epochs", 1, 10000),
    ("width", 64, 8192),
    ("height", 64, 8192),
    ("seed", 0, 2**32 - 1),
    ("network_dim", 1, 1024),
    ("network_alpha", 0.0, 1024),
    ("learning_rate", 0.0, 1.0),
    ("unet_lr", 0.0, 1.0),
    ("text_encoder_lr", 0.0, 1.0),
    ("noise_offset", 0.0, 1.0),
    ("batch_size", 0, 1024),
    ("save_every_n_epochs", 0, 10000),
    ("max_train_steps", 0, 10_000_000),
    ("lr_warmup_steps", 0, 10_000_000),
    ("min_bucket_reso", 64, 8192),
    ("max_bucket_reso", 64, 8192),
    ("sample_every_n_epochs", 1, 10000),
    ("sample_steps", 1, 1000),
    ("data_loader_workers", 0, 64),
    ("cpu_threads", 1, 1024),
    ("num_processes", 1, 1024),
    ("num_machines", 1, 1024),
    ("machine_rank", 0, 1023),
    ("main_process_port", 0, 65535),
)
_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sample_sampler", SAMPLERS),
    ("script", SCRIPTS),
    ("model_type", MODEL_TYPES),
    ("optimizer", OPTIMIZERS),
    ("lr_scheduler", SCHEDULERS),
    ("mixed_precision", MIXED_PRECISIONS),
    ("save_precision", SAVE_PRECISIONS),
    ("buckets", BUCKETS),
    ("attention", ATTENTIONS),
    ("device", DEVICES),
    ("launcher", LAUNCHERS),
    ("step_rule", STEP_RULES),
)


def sanitize_output_name(name: str) -> str:
    """A safe default output name from free text (e.g. the project folder): [A-Za-z0-9._-], no leading dot."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._-")[:100]
    return out or "lora"


def validate(spec: TrainSpec) -> list[str]:  # noqa: C901 (cut into steps pending)
    """Raise ValidationError for the first value that cannot work; return warnings for doubtful ones."""
    warnings: list[str] = []
    for name, choices in _CHOICES:
        value = getattr(spec, name)
        if value not in choices:
            raise ValidationError(f"{name} is {value!r}; choose one of: {', '.join(choices)}.")
    for name, low, high in _RANGES:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"{name} must be a number, not {value!r}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number, not {value}.")
        if value < low or (high is not None and value > high):
            raise ValidationError(f"{name} is {value}; set it between {low} and {high}.")
    if spec.learning_rate <= 0 and spec.unet_lr <= 0:
        raise ValidationError(
            "learning_rate and unet_lr are both 0: nothing would be learned; set learning_rate (e.g. 1e-4)."
        )
    if spec.output_name and not OUTPUT_NAME_RE.match(spec.output_name):
        raise ValidationError(
            f"output_name {spec.output_name!r} may only hold letters, digits, '.', '_' and '-' (at most 100, not "
            f"starting with '.' or '-'); e.g. {sanitize_output_name(spec.output_name)!r}."
        )
    if spec.caption_extension and not CAPTION_EXT_RE.match(spec.caption_extension):
        raise ValidationError(
            f"caption_extension {spec.caption_extension!r} must look like '.txt' (a dot and up "
            f"to 16 letters or digits), or be empty to use the dataset's."
        )
    step = 8 if spec.buckets == "on" else 64
    for name in ("width", "height"):
        value = getattr(spec, name)
        if value % step:
            lower = max(step, value - value % step)
            raise ValidationError(
                f"{name} is {value}; sd-scripts needs a multiple of {step}"
                + (" (8 with buckets on)" if step == 64 else "")
                + f": set it to {lower} or {lower + step}."
            )
    if spec.buckets == "on":
        for name in ("min_bucket_reso", "max_bucket_reso"):
            if getattr(spec, name) % 64:
                raise ValidationError(
                    f"{name} is {getattr(spec, name)}; buckets step by 64, so set a multiple of 64."
                )
        if spec.min_bucket_reso > spec.max_bucket_reso:
            raise ValidationError(
                f"min_bucket_reso {spec.min_bucket_reso} is above max_bucket_reso "
                f"{spec.max_bucket_reso}; swap them."
            )
    if spec.network_alpha > spec.network_dim:
        warnings.append(
            f"network_alpha {spec.network_alpha:g} is above network_dim {spec.network_dim}: the "
            f"update is scaled by alpha/dim = {spec.network_alpha / spec.network_dim:.2g}, which "
            f"usually overshoots; keep alpha <= dim."
        )
    if spec.lr_scheduler == "constant" and spec.lr_warmup_steps > 0:
        raise ValidationError(
            "lr_scheduler 'constant' takes no warmup (sd-scripts raises); set lr_warmup_steps "
            "to 0 or use constant_with_warmup."
        )
    if spec.launcher == "python" and (spec.num_processes > 1 or spec.num_machines > 1):
        raise ValidationError(
            "Several processes or machines need launcher 'accelerate'; set launcher to "
            "accelerate or num_processes and num_machines to 1."
        )
    if spec.gpu_ids and not GPU_IDS_RE.match(spec.gpu_ids):
        raise ValidationError(
            f"gpu_ids {spec.gpu_ids!r} must be GPU numbers separated by commas, e.g. '0,1'."
        )
    if spec.num_machines > 1:
        if not spec.main_process_ip or not HOST_RE.match(spec.main_process_ip):
            raise ValidationError(
                "Training on several machines needs main_process_ip: the address of machine "
                "rank 0 (e.g. 192.168.1.10)."
            )
        if spec.machine_rank >= spec.num_machines:
            raise ValidationError(
                f"machine_rank {spec.machine_rank} must be below num_machines {spec.num_machines}."
            )
    elif spec.main_process_ip and not HOST_RE.match(spec.main_process_ip):
        raise ValidationError(f"main_process_ip {spec.main_process_ip!r} is not an address.")
    if spec.device == "cpu":
        check_cpu(spec)
    return warnings


def check_cpu(spec: TrainSpec) -> None:
    """What fails on a CPU-only run, as sentences (sd-scripts would fail after minutes of loading)."""
    if spec.mixed_precision == "fp16":
        raise ValidationError(
            "mixed_precision fp16 needs a GPU and this run is on the CPU; set mixed_precision "
            "to no (or bf16, or auto)."
        )
    if spec.attention == "xformers":
        raise ValidationError("xformers needs a GPU and this run is on the CPU; set attention to sdpa.")
    if spec.optimizer in GPU_ONLY_OPTIMIZERS:
        raise ValidationError(
            f"The optimizer {spec.optimizer} uses bitsandbytes, which needs a GPU, and this run "
            f"is on the CPU; choose AdamW (or another optimizer without 8bit/Paged)."
        )
    if spec.num_processes > 1:
        raise ValidationError("Several processes need GPUs; on the CPU set num_processes to 1.")


# --------------------------------------------------------------------------- finding sd-scripts
@dataclass
class KohyaInstall:
    root: Path  # KOHYA_SS_PATH as given
    scripts_dir: Path  # the folder holding train_network.py
    python: Path


def find_sd_scripts(root: Path | None = None) -> Path:
    """The folder with train_network.py: the root itself (sd-scripts) or root/sd-scripts (kohya_ss GUI)."""
    root = Path(root) if root is not None else paths.kohya_ss_path()
    for candidate in (root, root / "sd-scripts"):
        if (candidate / "train_network.py").is_file():
            return candidate
    if not root.exists():
        raise ValidationError(
            f"No kohya sd-scripts found: KOHYA_SS_PATH={root} does not exist. Install kohya_ss or sd-scripts and "
            f"set KOHYA_SS_PATH (or kohya_ss_path in {paths.settings_path()}) to its folder."
        )
    raise ValidationError(
        f"KOHYA_SS_PATH={root} has neither train_network.py nor sd-scripts/train_network.py; set KOHYA_SS_PATH "
        f"(or kohya_ss_path in {paths.settings_path()}) to a kohya_ss or sd-scripts checkout."
    )


def _venv_python(folder: Path) -> list[Path]:
    if os.name == "nt":
        return [folder / "venv" / "Scripts" / "python.exe", folder / ".venv" / "Scripts" / "python.exe"]
    return [folder / "venv" / "bin" / "python", folder / ".venv" / "bin" / "python"]


def find_python(root: Path, scripts_dir: Path) -> Path:
    """KOHYA_PYTHON (or settings kohya_python), else the checkout's venv python; a sentence when none."""
    explicit = paths.kohya_python()
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise ValidationError(
            f"KOHYA_PYTHON={explicit} does not exist; set KOHYA_PYTHON (or kohya_python in "
            f"{paths.settings_path()}) to the python of your sd-scripts environment."
        )
    tried = []
    for folder in dict.fromkeys([root, scripts_dir]):
        for c in _venv_python(folder):
            tried.append(str(c))
            if c.is_file():
                return c
    raise ValidationError(
        f"No python found for sd-scripts in KOHYA_SS_PATH={root}: expected {tried[0]}; create its venv, or set "
        f"KOHYA_PYTHON (or kohya_python in {paths.settings_path()}) to the interpreter that runs sd-scripts."
    )


def find_install(root: str | os.PathLike | None = None) -> KohyaInstall:
    base = Path(root) if root is not None else paths.kohya_ss_path()
    scripts = find_sd_scripts(base)
    return KohyaInstall(base, scripts, find_python(base, scripts))


def default_tokenizer_cache() -> str:
    """$LORA_WORKBENCH_TOKENIZER_CACHE or settings `tokenizer_cache_dir` ("" = sd-scripts downloads)."""
    if os.environ.get(TOKENIZER_CACHE_ENV):
        return str(Path(os.environ[TOKENIZER_CACHE_ENV]).expanduser())
    value = paths.load_settings().get("tokenizer_cache_dir")
    return str(Path(value).expanduser()) if value else ""


# --------------------------------------------------------------------------- the command
@dataclass
class Command:
    """A resolved run: what to write beside the output and what to execute."""

    argv: list[str]
    cwd: str
    config: dict  # the --config_file TOML, by section
    prompts: str  # the sample prompts file's text ("" = none)
    script: str
    arch: str
    device: str  # "gpu" | "cpu"
    mixed_precision: str
    total_steps: int  # our estimate; sd-scripts' printed total wins in the progress
    output_dir: str
    output_name: str
    warnings: list[str] = field(default_factory=list)

    def display(self) -> str:
        """The argv as one shell-quoted line (for people; the run itself uses the list)."""
        return " ".join(shlex.quote(a) for a in self.argv)

    @property
    def final_path(self) -> str:
        return str(Path(self.output_dir) / f"{self.output_name}.safetensors")


def resolve_mixed_precision(spec: TrainSpec, device: str) -> str:
    if spec.mixed_precision != "auto":
        return spec.mixed_precision
    return "fp16" if device == "gpu" else "no"


def total_steps(spec: TrainSpec, dataset: LoraDataset) -> int:
    """The seed's rule: steps per epoch (at the trainer's batch size) x epochs, unless set explicitly."""
    if spec.max_train_steps:
        return spec.max_train_steps
    batch = spec.batch_size or dataset.batch_size or 1
    per_epoch = dataset.steps_per_epoch
    if spec.batch_size and spec.batch_size != dataset.batch_size:
        per_epoch = math.ceil(dataset.items_per_epoch / batch)
    return max(1, per_epoch) * spec.epochs


def sample_prompts_text(spec: TrainSpec) -> str:
    """The sd-scripts prompt file: one prompt per line, with size, seed and steps appended unless given."""
    lines = []
    for raw in spec.sample_prompts.splitlines():
        line = raw.replace("\x00", "").strip()
        if not line or line.startswith("#"):
            continue
        if " --w " not in f" {line} ":
            line += f" --w {spec.width}"
        if " --h " not in f" {line} ":
            line += f" --h {spec.height}"
        if " --d " not in f" {line} ":
            line += f" --d {spec.seed}"
        if " --s " not in f" {line} ":
            line += f" --s {spec.sample_steps}"
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def build_command(  # noqa: C901 (cut into steps pending)
    spec: TrainSpec,
    dataset: LoraDataset,
    model: ModelInfo,
    install: KohyaInstall,
    *,
    output_dir: str | os.PathLike,
    dataset_toml: str | os.PathLike,
    config_path: str | os.PathLike,
    prompts_path: str | os.PathLike | None = None,
    device: str = "cpu",
    logging_dir: str | os.PathLike | None = None,
) -> Command:
    """Resolve a validated spec into argv + config TOML. `device` is "gpu" or "cpu" (train.py probes it)."""
    warnings = validate(spec)
    if device == "cpu":
        check_cpu(spec)
    script = model.script if spec.script == "auto" else spec.script
    if spec.script != "auto" and spec.script != SCRIPT_FOR_ARCH[model.arch]:
        warnings.append(
            f"script {spec.script} was chosen by hand although {model.path} looks like "
            f"{model.name} ({SCRIPT_FOR_ARCH[model.arch]})."
        )
    if model.arch == "sdxl" and spec.v_parameterization:
        raise ValidationError("v_parameterization is for SD 2.x 768-v models; turn it off for SDXL.")
    mixed = resolve_mixed_precision(spec, device)
    name = spec.output_name or sanitize_output_name(Path(dataset.project_dir).name)
    steps = total_steps(spec, dataset)
    tokenizer = spec.tokenizer_cache_dir or default_tokenizer_cache()

    model_sec: dict = {"pretrained_model_name_or_path": str(model.path)}
    if model.arch == "sd2":
        model_sec["v2"] = True
        if spec.v_parameterization:
            model_sec["v_parameterization"] = True
    if tokenizer:
        model_sec["tokenizer_cache_dir"] = str(tokenizer)

    ds_sec: dict = {
        "dataset_config": str(dataset_toml),
        "resolution": f"{spec.width},{spec.height}",  # a string: an int or list crashes sd-scripts
        "caption_extension": spec.caption_extension or dataset.caption_extension or ".txt",
        "train_batch_size": spec.batch_size or dataset.batch_size or 1,
        "max_data_loader_n_workers": spec.data_loader_workers,
    }
    if spec.data_loader_workers > 0:
        ds_sec["persistent_data_loader_workers"] = True
    if spec.buckets == "on":
        ds_sec.update(
            enable_bucket=True,
            min_bucket_reso=spec.min_bucket_reso,
            max_bucket_reso=spec.max_bucket_reso,
            bucket_no_upscale=True,
        )
    elif spec.buckets == "dataset" and dataset.enable_bucket:
        ds_sec["bucket_no_upscale"] = True

    net_sec: dict = {
        "network_module": "networks.lora",
        "network_dim": spec.network_dim,
        "network_alpha": float(spec.network_alpha),
    }
    if not spec.train_text_encoder:
        net_sec["network_train_unet_only"] = True

    opt_sec: dict = {
        "optimizer_type": spec.optimizer,
        "learning_rate": float(spec.learning_rate),
        "unet_lr": float(spec.unet_lr),
        "lr_scheduler": spec.lr_scheduler,
        "lr_warmup_steps": spec.lr_warmup_steps,
    }
    if spec.train_text_encoder:
        opt_sec["text_encoder_lr"] = float(spec.text_encoder_lr)

    train_sec: dict = {
        "output_dir": str(output_dir),
        "output_name": name,
        "save_model_as": "safetensors",
        "save_precision": spec.save_precision,
        "seed": spec.seed,
        "mixed_precision": mixed,
        "gradient_checkpointing": spec.gradient_checkpointing,
        "cache_latents": spec.cache_latents,
        "cache_latents_to_disk": spec.cache_latents and spec.cache_latents_to_disk,
        "noise_offset": float(spec.noise_offset),
    }
    if spec.step_rule == "epochs" and not spec.max_train_steps:
        train_sec["max_train_epochs"] = spec.epochs
    else:
        train_sec["max_train_steps"] = steps
    if spec.save_every_n_epochs:
        train_sec["save_every_n_epochs"] = spec.save_every_n_epochs
    if spec.attention != "none":
        train_sec[spec.attention] = True
    if spec.lowram:
        train_sec["lowram"] = True
    if model.arch == "sdxl" and mixed == "fp16":
        train_sec["no_half_vae"] = True  # SDXL's VAE overflows in fp16
    if logging_dir:
        train_sec["logging_dir"] = str(logging_dir)

    prompts = sample_prompts_text(spec)
    sample_sec: dict = {}
    if prompts:
        if prompts_path is None:
            raise ValueError("prompts_path is required when the spec has sample prompts")
        sample_sec = {
            "sample_prompts": str(prompts_path),
            "sample_sampler": spec.sample_sampler,
            "sample_every_n_epochs": spec.sample_every_n_epochs,
        }

    config = {
        "model": model_sec,
        "dataset": ds_sec,
        "network": net_sec,
        "optimizer": opt_sec,
        "training": train_sec,
    }
    if sample_sec:
        config["sample"] = sample_sec

    script_path = str(install.scripts_dir / script)
    if spec.launcher == "python":
        argv = [str(install.python), script_path, "--config_file", str(config_path)]
    else:
        argv = [
            str(install.python),
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            str(spec.num_processes),
            "--num_machines",
            str(spec.num_machines),
            "--mixed_precision",
            mixed,
            "--dynamo_backend",
            "no",
            "--num_cpu_threads_per_process",
            str(spec.cpu_threads),
        ]
        if device == "cpu":
            argv.append("--cpu")
        elif spec.num_processes > 1 or spec.num_machines > 1:
            argv.append("--multi_gpu")
        if spec.gpu_ids and device != "cpu":
            argv += ["--gpu_ids", spec.gpu_ids]
        if spec.num_machines > 1:
            argv += ["--machine_rank", str(spec.machine_rank), "--main_process_ip", spec.main_process_ip]
        if spec.main_process_port:
            argv += ["--main_process_port", str(spec.main_process_port)]
        argv += [script_path, "--config_file", str(config_path)]
    return Command(
        argv=argv,
        cwd=str(install.scripts_dir),
        config=config,
        prompts=prompts,
        script=script,
        arch=model.arch,
        device=device,
        mixed_precision=mixed,
        total_steps=steps,
        output_dir=str(output_dir),
        output_name=name,
        warnings=warnings,
    )


def config_keys(config: dict) -> list[str]:
    """Every option name in a config dict (sections flattened, as sd-scripts reads them)."""
    out: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            out += list(value)
        else:
            out.append(key)
    return out


def argv_options(argv: list[str]) -> list[str]:
    """The `--option` names in an argv (without the dashes)."""
    return [a[2:] for a in argv if a.startswith("--")]


# The config TOML is written by toml_writer.dumps (shared with the dataset config).
