"""musubi-tuner's families on a GPU without internet: full-size random-weight models built from musubi's
own classes (on the GPU, then saved), its three steps (cache latents, cache text-encoder outputs,
train), one training step and one sample each. One line per family:

    family  OK|FAIL  steps, loss, sample written, seconds, peak GPU memory, the failing step if any

Run it through bench/gpu_families.sh --musubi. Needs: MUSUBI_TUNER_PATH (a musubi-tuner checkout),
MUSUBI_PYTHON (default: this python; musubi's missing packages on PYTHONPATH), the tokenizer files of
ComfyUI (COMFYUI_PATH, or MUSUBI_TOKENIZERS: a folder with t5_tokenizer/ and qwen25_tokenizer/).
Each family has its own time limit and a failure moves on to the next; the log of every step is in
WORK/logs/, the lines in WORK/results.txt.

`--dry-run` (no GPU): the tokenizers, every family's files as full-size sparse headers built from
musubi's classes, the dataset config, and each step's command line; nothing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gpu_families import Line  # noqa: E402  (one result line for both GPU checks)
from lora_workbench import toml_writer  # noqa: E402


@dataclass(frozen=True)
class Family:
    """What musubi's scripts for one family are called and what they take."""

    variant: str
    script: str  # musubi's script prefix: <script>_cache_latents, ..._train_network
    te_option: str  # the text encoder's option name (and the key of its file)
    network: str
    gb: float  # disk its files take (bf16), to refuse early on a full disk
    common: tuple[str, ...] = ()  # options every step takes (the model version)
    train: tuple[str, ...] = ()


FAMILIES = {
    "wan": Family(
        "t2v-1.3B",
        "wan",
        "t5",
        "networks.lora_wan",
        14.5,
        train=("--task", "t2v-1.3B", "--timestep_sampling", "shift", "--discrete_flow_shift", "3.0"),
    ),
    "z_image": Family(
        "",
        "zimage",
        "text_encoder",
        "networks.lora_zimage",
        20.5,
        train=("--timestep_sampling", "shift", "--discrete_flow_shift", "2.0"),
    ),
    "flux2": Family(
        "klein-4b",
        "flux_2",
        "text_encoder",
        "networks.lora_flux_2",
        16.0,
        common=("--model_version", "klein-4b"),
        train=("--timestep_sampling", "flux2_shift"),
    ),
    "qwen_image": Family(
        "",
        "qwen_image",
        "text_encoder",
        "networks.lora_qwen_image",
        58.0,
        common=("--model_version", "original"),
        train=("--timestep_sampling", "shift", "--discrete_flow_shift", "2.2"),
    ),
}
DEFAULT_FAMILIES = "wan,z_image,flux2,qwen_image"
PROMPT = "testsubject, a photo"


@dataclass
class Env:
    work: Path
    musubi: Path
    python: str
    tokenizers: Path
    size: int
    steps: int
    images: int
    sample: bool
    timeout: float
    budget: float  # seconds for all families: one past it is not started
    dry_run: bool
    cpu: bool = False
    families: list[str] = field(default_factory=list)
    keep_models: Path | None = None  # files built once and kept here (the CPU test), not deleted
    env: dict = field(default_factory=dict)

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run or self.cpu else "cuda"


class Deadline(Exception):
    pass


# --------------------------------------------------------------------------- environment
def _av_stub(work: Path, python: str) -> Path | None:
    """musubi imports PyAV at module level (dataset/media_utils.py) but only videos use it; where it is
    missing, an `av` that says so when a video is opened (these checks train on images)."""
    done = subprocess.run([python, "-c", "import av"], capture_output=True)
    if done.returncode == 0:
        return None
    stub = work / "stubs" / "av"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(
        "def open(*a, **k):\n    raise RuntimeError('PyAV is not installed here (bench stub): no videos')\n",
        encoding="utf-8",
    )
    return stub.parent


def prepare(e: Env) -> None:
    """Offline tokenizers in a hub cache, and the environment every step gets."""
    hf = e.work / "hf"
    done = subprocess.run(
        [e.python, str(REPO / "bench/musubi_tokenizers.py"), str(e.tokenizers), str(hf)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"offline tokenizers failed:\n{done.stderr[-2000:]}")
    paths = [str(e.musubi / "src")]
    stub = _av_stub(e.work, e.python)
    if stub:
        paths.append(str(stub))
        print(f"(PyAV missing: a stub at {stub} stands in; image datasets only)", flush=True)
    old = os.environ.get("PYTHONPATH")
    e.env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([*([old] if old else []), *paths]),
        HF_HOME=str(hf),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )


def run_logged(e: Env, name: str, cmd: list[str], deadline: float) -> tuple[int, str]:
    """Run one step with its output in WORK/logs/<name>.log; (returncode, output). Past the family's
    deadline it is stopped and Deadline raised."""
    log = e.work / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    left = deadline - time.monotonic()
    if left <= 0:
        raise Deadline(name)
    with open(log, "w", encoding="utf-8") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        try:
            done = subprocess.run(
                cmd, env=e.env, stdout=f, stderr=subprocess.STDOUT, timeout=left, cwd=e.work
            )
        except subprocess.TimeoutExpired:
            raise Deadline(name) from None
    return done.returncode, log.read_text(encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------- one family
def models_dir(e: Env, gb: float) -> Path | None:
    """Where the family's files fit: the work folder's disk, else RAM (/dev/shm: the GPU box has 128 GB
    of memory and 64 GB of disk, less than Qwen-Image's 58 GB of files and the rest); None: nowhere."""
    if e.dry_run:
        return e.work / "models"
    if e.keep_models:
        return e.keep_models
    for folder in (e.work / "models", Path("/dev/shm/lw-gpu-musubi-models")):
        parent = folder.parent if folder.parent.exists() else e.work
        if shutil.disk_usage(parent).free / 1e9 >= gb + 1:  # caches and logs stay in WORK (small)
            return folder
    return None


def build_models(e: Env, family: str, deadline: float, line: Line) -> dict[str, str] | None:
    spec = FAMILIES[family]
    models = models_dir(e, spec.gb)
    if models is None:
        free = shutil.disk_usage(e.work).free / 1e9
        line.fail(
            f"needs {spec.gb:.0f} GB for its files: {free:.0f} GB free in {e.work}, and /dev/shm too small"
        )
        return None
    out = e.work / f"{family}.files.json"
    mode = "sparse" if e.dry_run else "real"
    cmd = [e.python, str(REPO / "bench/musubi_models.py"), "save", family, spec.variant, str(models)]
    cmd += [e.device, mode, str(out)]
    if e.cpu:  # the DiT in float32, trained without mixed precision (see musubi_models.save_family)
        cmd += ["", "dit"]
    t0 = time.monotonic()
    rc, text = run_logged(e, f"{family}.models", cmd, deadline)
    if rc != 0:
        line.fail(f"building the models failed: {_last(text)}")
        return None
    files = json.loads(out.read_text(encoding="utf-8"))
    size = sum(Path(p).stat().st_size for p in files.values()) / 1e9
    where = " in RAM" if str(models).startswith("/dev/shm") else ""
    line.add(f"{len(files)} files {size:.1f} GB ({mode}{where}) in {time.monotonic() - t0:.0f} s")
    return files


def make_dataset(e: Env, family: str) -> Path:
    """`e.images` images with captions and musubi's dataset config (written with the pack's TOML writer)."""
    from PIL import Image

    root = e.work / "projects" / family
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(e.images):
        Image.new("RGB", (e.size, e.size), (40 * i, 120, 200 - 30 * i)).save(images / f"img{i}.png")
        (images / f"img{i}.txt").write_text(PROMPT, encoding="utf-8")
    config = {
        "general": {
            "resolution": [e.size, e.size],
            "caption_extension": ".txt",
            "batch_size": 1,
            "enable_bucket": False,
        },
        "datasets": [
            {"image_directory": str(images), "cache_directory": str(root / "cache"), "num_repeats": 1}
        ],
    }
    path = root / "dataset.toml"
    path.write_text(toml_writer.dumps(config), encoding="utf-8")
    (root / "prompts.txt").write_text(
        f"{PROMPT} --w {e.size} --h {e.size} --f 1 --s 4 --d 1\n", encoding="utf-8"
    )
    return root


def commands(e: Env, family: str, root: Path, files: dict[str, str]) -> dict[str, list[str]]:
    """musubi's three steps for the family: name -> argv."""
    spec = FAMILIES[family]
    launch = [e.python, str(REPO / "bench/musubi_launch.py")]
    if e.dry_run:
        launch.append("--parse-only")
    on_cpu = ["--device", "cpu"] if e.cpu else []
    dataset = ["--dataset_config", str(root / "dataset.toml")]
    te = [f"--{spec.te_option}", files[spec.te_option]]
    train = [*launch, f"{spec.script}_train_network", *dataset, *spec.common, *spec.train]
    train += ["--dit", files["dit"], "--vae", files["vae"], *te]
    train += ["--sdpa", "--mixed_precision", "no" if e.cpu else "bf16", "--gradient_checkpointing"]
    train += ["--network_module", spec.network, "--network_dim", "4", "--network_alpha", "4"]
    train += ["--optimizer_type", "adamw", "--learning_rate", "1e-4", "--seed", "42"]
    train += ["--max_train_steps", str(e.steps), "--max_data_loader_n_workers", "1"]
    if e.sample:
        train += ["--sample_prompts", str(root / "prompts.txt"), "--sample_every_n_steps", str(e.steps)]
    train += ["--output_dir", str(root / "output"), "--output_name", f"gpu_{family}"]
    return {
        "cache_latents": [
            *launch,
            f"{spec.script}_cache_latents",
            *dataset,
            *spec.common,
            "--vae",
            files["vae"],
            *on_cpu,
        ],
        "cache_text_encoder": [
            *launch,
            f"{spec.script}_cache_text_encoder_outputs",
            *dataset,
            *spec.common,
            *te,
            "--batch_size",
            "4",
            *on_cpu,
        ],
        "train": train,
    }


LOSS = re.compile(r"avr_loss=([-+0-9.eE]+|nan|inf)")
PEAK = re.compile(r"PEAK_GPU_MIB=(\d+)")


def run_steps(e: Env, family: str, root: Path, files: dict[str, str], deadline: float, line: Line) -> None:
    peak = 0
    for name, cmd in commands(e, family, root, files).items():
        t0 = time.monotonic()
        rc, text = run_logged(e, f"{family}.{name}", cmd, deadline)
        if e.dry_run:
            ok = rc == 0 and "ARGS OK" in text
            line.add(f"{name} args {'OK' if ok else 'REFUSED: ' + _last(text)}")
            line.ok = line.ok and ok
            continue
        peak = max([peak, *map(int, PEAK.findall(text))])
        if rc != 0:
            line.fail(f"{name} failed (rc {rc}) after {time.monotonic() - t0:.0f} s: {_last(text)}")
            break
        line.add(f"{name} {time.monotonic() - t0:.0f} s")
    else:
        if not e.dry_run:
            _train_result(e, family, root, line)
    if peak:
        line.add(f"peak GPU {peak / 1024:.1f} GiB")


def _train_result(e: Env, family: str, root: Path, line: Line) -> None:
    log = (e.work / "logs" / f"{family}.train.log").read_text(encoding="utf-8", errors="replace")
    losses = LOSS.findall(log)
    loras = list((root / "output").glob(f"gpu_{family}*.safetensors"))
    samples = [p for p in (root / "output" / "sample").glob("*") if p.suffix in (".png", ".mp4", ".webp")]
    line.add(
        f"steps {e.steps}, loss {losses[-1] if losses else '?'}, LoRA {'written' if loras else 'MISSING'}"
    )
    if e.sample:
        line.add(f"{len(samples)} sample(s) written" if samples else "no sample written")
    if not loras or (e.sample and not samples) or not losses or losses[-1] in ("nan", "inf"):
        line.ok = False


def _last(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    errors = [x for x in lines if "Error" in x or "error" in x]
    return (errors or lines or ["(no output)"])[-1].strip()[:300]


def check_family(e: Env, family: str, end: float) -> Line:
    line = Line(f"{family} {FAMILIES[family].variant}".strip())
    t0 = time.monotonic()
    deadline = min(t0 + e.timeout, end)
    files = None
    try:
        files = build_models(e, family, deadline, line)
        if files is not None:
            root = make_dataset(e, family)
            run_steps(e, family, root, files, deadline, line)
    except Deadline as step:
        line.fail(f"stopped at its time limit ({deadline - t0:.0f} s) in {step}")
    finally:
        line.add(f"{time.monotonic() - t0:.0f} s")
        for path in (files or {}).values() if e.keep_models is None else ():
            Path(path).unlink(missing_ok=True)  # one family's files at a time: the disk holds no more
        if e.keep_models is None:
            shutil.rmtree(e.work / "projects" / family / "cache", ignore_errors=True)
    return line


# --------------------------------------------------------------------------- main
def parse(argv: list[str]) -> Env:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=DEFAULT_FAMILIES, help=f"comma-separated, of {', '.join(FAMILIES)}")
    p.add_argument("--work", default="/tmp/lw-gpu-musubi", help="scratch folder (models, datasets, logs)")
    p.add_argument("--size", type=int, default=256, help="training and sample resolution")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument(
        "--images", type=int, default=4, help="images in the dataset (each is one caption to encode)"
    )
    # on a CPU, Wan's sample prompt costs one more UMT5-XXL pass: ~12 minutes on two busy cores
    p.add_argument("--no-sample", action="store_true", help="train without the sample after the last step")
    p.add_argument("--timeout", type=float, default=200, help="seconds per family, all its steps")
    p.add_argument("--budget", type=float, default=530, help="seconds for all families together")
    p.add_argument(
        "--dry-run", action="store_true", help="no GPU: sparse files, commands through musubi's parsers"
    )
    p.add_argument("--cpu", action="store_true", help="run for real on the CPU (small families, small sizes)")
    p.add_argument(
        "--keep-models", type=Path, help="build the files here once and keep them (reused next run)"
    )
    args = p.parse_args(argv)
    unknown = [f for f in args.families.split(",") if f not in FAMILIES]
    if unknown:
        p.error(f"unknown families {unknown}: choose from {', '.join(FAMILIES)}")
    musubi = os.environ.get("MUSUBI_TUNER_PATH")
    if not musubi or not (Path(musubi) / "src" / "musubi_tuner").is_dir():
        p.error("set MUSUBI_TUNER_PATH to a musubi-tuner checkout (with src/musubi_tuner)")
    tokenizers = os.environ.get("MUSUBI_TOKENIZERS") or os.environ.get("COMFYUI_PATH")
    if not tokenizers:
        p.error("set COMFYUI_PATH (or MUSUBI_TOKENIZERS) for the tokenizer files")
    e = Env(
        work=Path(args.work),
        musubi=Path(musubi),
        python=os.environ.get("MUSUBI_PYTHON", sys.executable),
        tokenizers=Path(tokenizers),
        size=args.size,
        steps=args.steps,
        images=args.images,
        sample=not args.no_sample,
        timeout=args.timeout,
        budget=args.budget,
        dry_run=args.dry_run,
        cpu=args.cpu,
        keep_models=args.keep_models,
        families=args.families.split(","),
    )
    return e


def main(argv: list[str]) -> int:
    e = parse(argv)
    e.work.mkdir(parents=True, exist_ok=True)
    prepare(e)
    results = e.work / "results.txt"
    lines = []
    end = time.monotonic() + e.budget
    for family in e.families:
        if end - time.monotonic() < 45:
            line = Line(family)
            line.fail(f"not started: the {e.budget:.0f} s budget for all families is spent")
        else:
            line = check_family(e, family, end)
        print(line, flush=True)
        with open(results, "a", encoding="utf-8") as f:
            f.write(f"{line}\n")
        lines.append(line)
    return 0 if all(line.ok for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
