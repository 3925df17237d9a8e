"""musubi-tuner for real on a CPU: Wan 2.1 T2V 1.3B, full-size random weights, 64x64, one frame, two
images: musubi's three steps (cache latents, cache text-encoder outputs, train 2 steps with
networks.lora_wan, no sample), through bench/gpu_musubi.py --cpu (the flow the GPU check runs).

Needs, or skips saying which is missing:
  MUSUBI_TUNER_PATH   a musubi-tuner checkout; MUSUBI_PYTHON its interpreter (a CPU torch will do)
  LORA_WORKBENCH_MUSUBI_MODELS  a folder with the Wan 2.1 1.3B files (the DiT in float32; 17 GB), made
      once with  MUSUBI_TUNER_PATH=... $MUSUBI_PYTHON bench/musubi_models.py save wan t2v-1.3B DIR cpu real
      DIR/wan.json "" dit   (about 6 minutes)
  COMFYUI_PATH        for the tokenizer files (musubi's are fetched by Hugging Face id; none offline)
Slow: about 15 minutes on two busy cores, most of it UMT5-XXL encoding two captions (bf16 on a CPU).
Run with -s to see steps, loss and wall time.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WAN_FILES = (  # as bench/musubi_models.py names them
    "diffusion_models/random_wan2.1_t2v-1.3B_fp32.safetensors",  # float32: see musubi_models.save_family
    "vae/random_wan_2.1_vae.safetensors",
    "text_encoders/random_models_t5_umt5-xxl-enc-bf16.safetensors",
)


def _env_path(name: str, why: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: {why}")
    return Path(value).expanduser()


@pytest.fixture(scope="module")
def musubi_env() -> dict:
    """The environment bench/gpu_musubi.py needs: musubi's checkout and interpreter, the tokenizers."""
    musubi = _env_path("MUSUBI_TUNER_PATH", "point it at a musubi-tuner checkout")
    if not (musubi / "src" / "musubi_tuner" / "wan_train_network.py").is_file():
        pytest.skip(f"MUSUBI_TUNER_PATH={musubi} has no src/musubi_tuner/wan_train_network.py")
    python = _env_path("MUSUBI_PYTHON", "point it at musubi-tuner's interpreter (its venv's python)")
    if not python.is_file():
        pytest.skip(f"MUSUBI_PYTHON={python} is not a file")
    comfy = _env_path("COMFYUI_PATH", "musubi's tokenizers come from ComfyUI's files offline")
    env = dict(os.environ, MUSUBI_TUNER_PATH=str(musubi), MUSUBI_PYTHON=str(python), COMFYUI_PATH=str(comfy))
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


@pytest.fixture(scope="module")
def wan_models() -> Path:
    models = _env_path(
        "LORA_WORKBENCH_MUSUBI_MODELS", "a folder with the Wan 2.1 1.3B files (see this module)"
    )
    missing = [f for f in WAN_FILES if not (models / f).is_file()]
    if missing:
        pytest.skip(
            f"{models} lacks {', '.join(missing)}: build them with bench/musubi_models.py (see this module)"
        )
    return models


def _gpu_musubi(env: dict, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    cmd = [sys.executable, str(REPO / "bench/gpu_musubi.py"), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - t0


def test_the_gpu_check_puts_every_familys_commands_through_musubis_own_parser(musubi_env, tmp_path):
    # the time limits guard the GPU box's budget; here only imports (slow on a busy CPU) run
    args = ["--dry-run", "--work", str(tmp_path), "--timeout", "1200", "--budget", "4800"]
    done, wall = _gpu_musubi(musubi_env, *args, timeout=5000)
    print(f"\n{done.stdout}wall {wall:.0f} s")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.count("args OK") == 3 * 4, done.stdout


def test_wan_1_3b_trains_two_steps_on_a_cpu(musubi_env, wan_models, tmp_path):
    args = ["--cpu", "--families", "wan", "--size", "64", "--steps", "2", "--images", "2", "--no-sample"]
    args += ["--keep-models", str(wan_models)]
    args += ["--work", str(tmp_path), "--timeout", "3000", "--budget", "3000"]
    done, wall = _gpu_musubi(musubi_env, *args, timeout=3300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("wan ")), done.stdout + done.stderr)
    print(f"\n{line}\nwall {wall:.0f} s")
    assert done.returncode == 0, line
    assert "steps 2" in line and "LoRA written" in line, line
    loss = float(re.search(r"loss ([-+0-9.eE]+|nan|inf)", line).group(1))
    assert math.isfinite(loss), line
    lora = next((tmp_path / "projects" / "wan" / "output").glob("gpu_wan*.safetensors"))
    keys = _keys(lora)
    assert keys and all(k.startswith("lora_unet_") for k in keys), sorted(keys)[:5]
    assert any("blocks_0_self_attn_q" in k for k in keys), sorted(keys)[:5]


def test_wan_1_3b_trains_through_the_pack_on_a_cpu(musubi_env, wan_models, tmp_path):
    """`lora-workbench train PROJECT --base <dit>`: the musubi backend's Job (cache latents, cache
    text-encoder outputs, train) run for real. musubi's Wan scripts need the CPU shim on PYTHONPATH
    (bench/musubi_cpu_shim: t5.py asks torch.cuda.current_device() at import)."""
    from PIL import Image

    subset = tmp_path / "project" / "images" / "2_testsubject"
    subset.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (64, 64), (40 * i, 120, 200 - 30 * i)).save(subset / f"img{i}.png")
        (subset / f"img{i}.txt").write_text("testsubject, a photo", encoding="utf-8")
    hf = tmp_path / "hf"
    tokenizers = [musubi_env["MUSUBI_PYTHON"], str(REPO / "bench/musubi_tokenizers.py")]
    subprocess.run([*tokenizers, musubi_env["COMFYUI_PATH"], str(hf)], check=True, capture_output=True)
    env = dict(musubi_env, HF_HOME=str(hf), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = str(REPO / "bench" / "musubi_cpu_shim")
    env["LORA_WORKBENCH_ROOTS"] = os.pathsep.join([str(tmp_path), str(wan_models)])
    env["LORA_WORKBENCH_SETTINGS"] = str(tmp_path / "settings.json")
    cli = [sys.executable, "-m", "lora_workbench"]
    project = str(tmp_path / "project")
    subprocess.run(
        [*cli, "dataset", "apply", project, "--width", "64", "--height", "64", "--batch-size", "1"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    cmd = [*cli, "train", project, "--base", str(wan_models / WAN_FILES[0])]
    cmd += ["--vae", str(wan_models / WAN_FILES[1]), "--umt5", str(wan_models / WAN_FILES[2])]
    cmd += ["--width", "64", "--height", "64", "--max-train-steps", "2", "--network-dim", "4"]
    cmd += ["--network-alpha", "4", "--device", "cpu", "--mixed-precision", "no", "--output-name", "cpu_wan"]
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=3300)
    wall = time.monotonic() - t0
    out = done.stdout + done.stderr
    losses = re.findall(r"loss[ =:]+([-+0-9.eE]+)", out)
    print(f"\nrc {done.returncode}, loss {losses[-1:] or '?'}, wall {wall:.0f} s\n{out[-1500:]}")
    assert done.returncode == 0, out[-3000:]
    loras = list((tmp_path / "project" / "output").glob("cpu_wan-*/cpu_wan*.safetensors"))
    assert loras, out[-3000:]
    assert all(k.startswith("lora_unet_") for k in _keys(loras[0]))


def _keys(path: Path) -> list[str]:
    import json

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return [k for k in json.loads(f.read(n)) if k != "__metadata__"]
