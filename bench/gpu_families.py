"""Every family, end to end on a GPU: random-weight full-size models built by sd-scripts' own classes,
4 training steps through the pack (`lora-workbench train`), the LoRA loaded into ComfyUI by
LoadTrainedLoRA and one image sampled. One line per family. Run it through bench/gpu_families.sh.

Needs: an NVIDIA GPU (about 80 GB for the biggest family at 512x512 without block swapping, less
with the family's memory options), ~60 GB of free disk (one family's files at a time), ComfyUI
(COMFYUI_PATH, COMFYUI_PYTHON) and sd-scripts (KOHYA_SS_PATH, KOHYA_PYTHON), no internet: the
tokenizers come from ComfyUI's own files (offline_tokenizers.py).

`--dry-run` does what needs no GPU: the tokenizers, the small models (VAEs, CLIP-L, ByT5, Qwen3) for
real on the CPU, every family's sd-scripts model on the meta device, and the train command lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.offline_tokenizers import gemma_spm  # noqa: E402
from lora_workbench.training import families  # noqa: E402

FAMILIES = (  # (family, variant): the base models the check trains
    ("flux", "dev"),
    ("flux", "schnell"),
    ("chroma", ""),
    ("sd3", "3.5-medium"),
    ("lumina2", ""),
    ("hunyuan_image", "2.1"),
    ("anima", ""),
)


@dataclass
class Env:
    work: Path
    comfyui: Path
    comfy_python: str
    kohya: Path
    kohya_python: str
    size: int
    steps: int
    dry_run: bool
    env: dict = field(default_factory=dict)

    @property
    def models(self) -> Path:
        return self.work / "models"


@dataclass
class Line:
    family: str
    parts: list[str] = field(default_factory=list)
    ok: bool = True

    def add(self, text: str) -> None:
        self.parts.append(text)

    def fail(self, text: str) -> None:
        self.ok = False
        self.parts.append(text)

    def __str__(self) -> str:
        return f"{self.family:<22} {'OK  ' if self.ok else 'FAIL'} " + "; ".join(self.parts)


# --------------------------------------------------------------------------- steps
def run(cmd: list[str], env: dict, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def prepare(e: Env) -> None:
    """Offline tokenizers (from ComfyUI's files) and the environment every child gets."""
    tok, hf = e.work / "tokenizers", e.work / "hf"
    e.env = dict(
        os.environ,
        HF_HOME=str(hf),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LORA_WORKBENCH_TOKENIZER_CACHE=str(tok),
        KOHYA_SS_PATH=str(e.kohya),
        KOHYA_PYTHON=e.kohya_python,
        LORA_WORKBENCH_ROOTS=str(e.work),
        LORA_WORKBENCH_SETTINGS=str(e.work / "settings.json"),
        LORA_WORKBENCH_GEMMA_SPM=str(gemma_spm(tok)),  # the stand-in Gemma tokenizer, for ComfyUI too
    )
    done = run(
        [e.kohya_python, str(REPO / "bench/offline_tokenizers.py"), str(e.comfyui), str(tok), str(hf)],
        e.env,
        600,
    )
    if done.returncode != 0:
        raise SystemExit(f"offline tokenizers failed:\n{done.stderr[-3000:]}")


def build_models(e: Env, family: str, variant: str, line: Line) -> dict[str, str] | None:
    """The family's random-weight files (sd-scripts' classes), or on --dry-run the small parts."""
    t0 = time.monotonic()
    what = "small" if e.dry_run else "all"
    device = "cpu" if e.dry_run else "cuda"
    out = e.work / f"{family}.json"
    cmd = [
        e.kohya_python,
        str(REPO / "bench/family_models.py"),
        "save",
        family,
        variant,
        str(e.models),
        device,
        what,
        str(out),
    ]
    done = run(cmd, e.env, 3600)
    if done.returncode != 0:
        line.fail(f"building the models failed: {done.stderr.strip().splitlines()[-1:]} ")
        return None
    files = json.loads(out.read_text(encoding="utf-8"))
    size = sum(Path(p).stat().st_size for p in files.values()) / 1e9
    how = "sparse headers + the small parts for real" if e.dry_run else "random weights"
    line.add(f"built {len(files)} files ({size:.1f} GB, {how}) in {time.monotonic() - t0:.0f} s")
    if e.dry_run:
        _check_small_parts(e, family, out, line)
    return files


def _check_small_parts(e: Env, family: str, files_json: Path, line: Line) -> None:
    """sd-scripts' own loaders read the small files we built for real (the big ones need the GPU box)."""
    out = e.work / f"{family}.loaded.json"
    cmd = [e.kohya_python, str(REPO / "bench/family_models.py"), "check", family, str(files_json), str(out)]
    done = run(cmd, e.env, 1800)
    loaded = json.loads(out.read_text(encoding="utf-8")) if done.returncode == 0 else {}
    bad = {k: v for k, v in loaded.items() if v != "ok"}
    if done.returncode != 0 or bad:
        line.fail(f"sd-scripts could not load {bad or done.stderr.strip().splitlines()[-1:]}")
    else:
        line.add(f"sd-scripts loaded {', '.join(loaded) or 'nothing (all sparse)'}")


def make_project(e: Env, family: str) -> Path:
    """4 images with captions in images/1_testsubject, and the dataset TOML the pack writes."""
    from PIL import Image

    project = e.work / "projects" / family
    sub = project / "images" / "1_testsubject"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.new("RGB", (e.size, e.size), (40 * i, 120, 200 - 30 * i)).save(sub / f"img{i}.png")
        (sub / f"img{i}.txt").write_text("testsubject, a photo", encoding="utf-8")
    cli = [sys.executable, "-m", "lora_workbench", "dataset", "apply", str(project)]
    done = run([*cli, "--width", str(e.size), "--height", str(e.size), "--batch-size", "1"], e.env, 300, REPO)
    if done.returncode != 0:
        raise SystemExit(f"dataset apply failed for {project}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return project


def train_command(e: Env, family: str, project: Path, files: dict[str, str]) -> list[str]:
    """`lora-workbench train` for the family: the base model, its extra files by sd-scripts' option
    names, 4 steps, and a sample prompt so the family's own sampler runs too."""
    cmd = [sys.executable, "-m", "lora_workbench", "train", str(project), "--base", files["base"]]
    cmd += ["--model-type", family]
    for slot in families.get(family).model_files:
        if slot.option in files:
            cmd += ["--" + slot.option.replace("_", "-"), files[slot.option]]
    cmd += ["--width", str(e.size), "--height", str(e.size), "--max-train-steps", str(e.steps)]
    cmd += ["--network-dim", "4", "--network-alpha", "4", "--device", "gpu", "--mixed-precision", "bf16"]
    cmd += ["--sample-prompts", "testsubject, a photo", "--output-name", f"gpu_{family}"]
    return cmd


def train(e: Env, family: str, project: Path, files: dict[str, str], line: Line) -> Path | None:
    cmd = train_command(e, family, project, files)
    if e.dry_run:  # the pack plans the run for real (detection, extra files, command), runs nothing
        done = run([*cmd, "--device", "cpu", "--print-command"], e.env, 600, REPO)
        out = (done.stdout + done.stderr).strip().splitlines()
        if done.returncode != 0:
            line.fail(f"the pack refused the run: {' | '.join(out[-2:])}")
        else:
            line.add(
                f"planned: {next((x for x in out if 'train_network.py' in x), out[-1] if out else '')[:400]}"
            )
        return None
    t0 = time.monotonic()
    done = run(cmd, e.env, 3600, REPO)
    loras = sorted((project / "output").glob(f"gpu_{family}-*/gpu_{family}.safetensors"))
    if done.returncode != 0 or not loras:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        line.fail(f"training failed (rc {done.returncode}): {' | '.join(tail)}")
        return None
    samples = list(loras[-1].parent.glob("sample/*.png"))
    line.add(f"trained {e.steps} steps in {time.monotonic() - t0:.0f} s, {len(samples)} sample image(s)")
    return loras[-1]


# --------------------------------------------------------------------------- ComfyUI
def _loaders(family: str, names: dict[str, str]) -> tuple[dict, list, list, list]:
    """The family's ComfyUI loaders: (nodes, model ref, clip ref, vae ref)."""
    unet = {
        "class_type": "UNETLoader",
        "inputs": {"unet_name": names.get("base", ""), "weight_dtype": "default"},
    }
    vae_name = names.get("ae") or names.get("vae", "")
    vae = {"class_type": "VAELoader", "inputs": {"vae_name": vae_name}}
    if family == "sd3":
        nodes = {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": names["base"]}},
            "2": {
                "class_type": "TripleCLIPLoader",
                "inputs": {
                    "clip_name1": names["clip_l"],
                    "clip_name2": names["clip_g"],
                    "clip_name3": names["t5xxl"],
                },
            },
        }
        return nodes, ["1", 0], ["2", 0], ["1", 2]
    if family in ("flux", "hunyuan_image"):
        first, second = ("clip_l", "t5xxl") if family == "flux" else ("text_encoder", "byt5")
        clip = {
            "class_type": "DualCLIPLoader",
            "inputs": {"clip_name1": names[first], "clip_name2": names[second], "type": family},
        }
    else:
        te = names.get("t5xxl") or names.get("gemma2") or names.get("qwen3", "")
        clip = {"class_type": "CLIPLoader", "inputs": {"clip_name": te, "type": family}}
    return {"1": unet, "2": clip, "3": vae}, ["1", 0], ["2", 0], ["3", 0]


def sample_prompt(family: str, variant: str, names: dict[str, str], lora: str, size: int) -> dict:
    """API prompt: the family's loaders -> LoadTrainedLoRA -> its own sampler settings -> SaveImage."""
    nodes, model, clip, vae = _loaders(family, names)
    sample = families.get(family).sample_for(variant)
    nodes["10"] = {
        "class_type": "LoadTrainedLoRA",
        "inputs": {
            "model": model,
            "clip": clip,
            "lora_name": lora,
            "epoch": 0,
            "strength_model": 1.0,
            "strength_clip": 1.0,
        },
    }
    nodes["11"] = {
        "class_type": "CLIPTextEncode",
        "inputs": {"clip": ["10", 1], "text": "testsubject, a photo"},
    }
    nodes["12"] = {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": sample.negative}}
    positive = ["11", 0]
    if sample.guidance is not None:
        nodes["13"] = {
            "class_type": "FluxGuidance",
            "inputs": {"conditioning": positive, "guidance": sample.guidance},
        }
        positive = ["13", 0]
    latent = "EmptyHunyuanImageLatent" if family == "hunyuan_image" else "EmptySD3LatentImage"
    nodes["14"] = {"class_type": latent, "inputs": {"width": size, "height": size, "batch_size": 1}}
    nodes["15"] = {
        "class_type": "KSampler",
        "inputs": {
            "model": ["10", 0],
            "positive": positive,
            "negative": ["12", 0],
            "latent_image": ["14", 0],
            "seed": 1,
            "steps": min(sample.steps, 8),
            "cfg": sample.cfg,
            "sampler_name": "euler",
            "scheduler": "simple",
            "denoise": 1.0,
        },
    }
    nodes["16"] = {"class_type": "VAEDecode", "inputs": {"samples": ["15", 0], "vae": vae}}
    nodes["17"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["16", 0], "filename_prefix": f"gpu_{family}"},
    }
    return nodes


class Comfy:
    """A ComfyUI server on the bench's models folder, started once."""

    def __init__(self, e: Env):
        self.e = e
        home = e.work / "comfy"
        home.mkdir(parents=True, exist_ok=True)
        (home / "custom_nodes").mkdir(exist_ok=True)
        link = home / "custom_nodes" / "lora-workbench"
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        yaml = home / "extra_model_paths.yaml"
        folders = "".join(
            f"    {f}: {f}\n" for f in ("checkpoints", "diffusion_models", "text_encoders", "vae", "loras")
        )
        yaml.write_text(
            f"bench:\n    base_path: {e.models}\n{folders}    custom_nodes: {home / 'custom_nodes'}\n"
        )
        self.port = 8190
        self.log_path = home / "comfy.log"
        args = [e.comfy_python, "main.py", "--listen", "127.0.0.1", "--port", str(self.port)]
        args += ["--extra-model-paths-config", str(yaml), "--output-directory", str(home / "output")]
        self.proc = subprocess.Popen(
            args,
            cwd=e.comfyui,
            env=e.env,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        from lora_workbench.client.queue_client import QueueClient

        self.client = QueueClient(f"http://127.0.0.1:{self.port}", out=lambda _s: None)
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"ComfyUI exited: {self.log()[-3000:]}")
            try:
                self.client.object_info()
                return
            except Exception:
                time.sleep(2)
        raise SystemExit("ComfyUI did not start within 300 s")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sample(self, family: str, variant: str, files: dict[str, str], lora: Path, line: Line) -> None:
        loras = self.e.models / "loras"
        loras.mkdir(parents=True, exist_ok=True)
        name = f"{lora.stem}_{int(time.time())}.safetensors"  # a new name: ComfyUI caches LoRAs by path
        shutil.copyfile(lora, loras / name)
        names = {k: Path(v).name for k, v in files.items()}
        before = self.log().count("lora key not loaded")
        try:
            result = self.client.run(sample_prompt(family, variant, names, name, self.e.size), timeout=1800)
        except Exception as exc:  # PromptRejected: e.g. a ComfyUI without this family's loader type
            line.fail(f"ComfyUI refused the sample prompt: {str(exc)[:300]}")
            return
        missing = self.log().count("lora key not loaded") - before
        if result.status != "success":
            line.fail(f"ComfyUI {result.status}: {str(result.error)[:300]}")
            return
        line.add(
            f"ComfyUI: LoRA applied with {missing} 'lora key not loaded', image in {result.elapsed_s:.0f} s"
        )
        if missing:
            line.ok = False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------- main
def check_family(e: Env, comfy: Comfy | None, family: str, variant: str) -> Line:
    line = Line(f"{family} {variant}".strip())
    files = build_models(e, family, variant, line)
    if files is None:
        return line
    try:
        project = make_project(e, family)
        lora = train(e, family, project, files, line)
        if lora is not None and comfy is not None:
            comfy.sample(family, variant, files, lora, line)
    finally:
        for path in files.values():  # one family's files at a time: the disk holds no more
            Path(path).unlink(missing_ok=True)
    return line


def parse(argv: list[str]) -> tuple[argparse.Namespace, Env]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="all", help="comma-separated family ids, or all")
    p.add_argument("--work", default="/tmp/lw-gpu-families", help="scratch folder (models, projects)")
    p.add_argument("--size", type=int, default=512, help="training and sample resolution")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--dry-run", action="store_true", help="no GPU: tokenizers, small models, commands")
    args = p.parse_args(argv)
    comfy_dir = Path(os.environ["COMFYUI_PATH"])
    kohya = Path(os.environ["KOHYA_SS_PATH"])
    e = Env(
        work=Path(args.work),
        comfyui=comfy_dir,
        comfy_python=os.environ.get("COMFYUI_PYTHON", sys.executable),
        kohya=kohya,
        kohya_python=os.environ.get("KOHYA_PYTHON", str(kohya / "venv/bin/python")),
        size=args.size,
        steps=args.steps,
        dry_run=args.dry_run,
    )
    return args, e


def main(argv: list[str]) -> int:
    args, e = parse(argv)
    wanted = None if args.families == "all" else set(args.families.split(","))
    e.work.mkdir(parents=True, exist_ok=True)
    prepare(e)
    comfy = None if e.dry_run else Comfy(e)
    lines = []
    try:
        for family, variant in FAMILIES:
            if wanted is None or family in wanted:
                line = check_family(e, comfy, family, variant)
                print(line, flush=True)
                lines.append(line)
    finally:
        if comfy is not None:
            comfy.stop()
    return 0 if all(line.ok for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
