"""Integration tier: a real ComfyUI and a real kohya sd-scripts, or a skip that says why.

`scripts/integration-env.sh` builds all of it into one folder and writes the variables below to its
`env` file (`. .integration/env`). The tier runs when they point at real installs:
  COMFYUI_PATH     a ComfyUI checkout (main.py); COMFYUI_PYTHON its interpreter (default: a venv/ or
                   .venv/ inside it, else the integration folder's venv-comfy, else this python)
  KOHYA_SS_PATH    a kohya_ss or sd-scripts checkout; KOHYA_PYTHON its interpreter (default: its venv/,
                   else the integration folder's venv-sdscripts)
  LORA_WORKBENCH_TEST_CKPT         an SD1.5 checkpoint (default: the folder's random_sd15.safetensors)
  LORA_WORKBENCH_TOKENIZER_CACHE   sd-scripts --tokenizer_cache_dir (default: the folder's)
  LORA_WORKBENCH_TEST_DATASET      a small dataset with images/2_testsubject (default: the folder's)
The integration folder: $LORA_WORKBENCH_INTEGRATION_HOME, else the one holding the KOHYA_SS_PATH
checkout when it has the script's layout (sd-scripts installed by `lora-workbench trainer install`
into its workbench-home/), else .integration/ in this repository.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from lora_workbench.training.proctree import pid_alive

REPO = Path(__file__).resolve().parents[2]
SETUP_HINT = "scripts/integration-env.sh builds it; source the env file it writes"


def integration_home() -> Path:
    """The folder scripts/integration-env.sh built (see the module docstring for how it is found)."""
    if os.environ.get("LORA_WORKBENCH_INTEGRATION_HOME"):
        return Path(os.environ["LORA_WORKBENCH_INTEGRATION_HOME"]).expanduser()
    kohya = os.environ.get("KOHYA_SS_PATH")
    if kohya:
        path = Path(kohya).expanduser()
        # a checkout beside models/, or the one `trainer install` put in <home>/workbench-home/...
        for home in (path.parent, *(p.parent for p in path.parents if p.name == "workbench-home")):
            if (home / "models").is_dir():
                return home
    return REPO / ".integration"


def smoke_images_dir() -> Path:
    """The small dataset's subset folder: 4 PNGs 64x64 with captions."""
    value = os.environ.get("LORA_WORKBENCH_TEST_DATASET")
    root = Path(value).expanduser() if value else integration_home() / "datasets" / "smoke"
    return root / "images" / "2_testsubject"


def _first_python(candidates) -> Path | None:
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    value = os.environ.get("COMFYUI_PATH")
    if not value:
        pytest.skip(f"COMFYUI_PATH is not set: point it at a ComfyUI checkout ({SETUP_HINT})")
    path = Path(value)
    if not (path / "main.py").is_file():
        pytest.skip(f"COMFYUI_PATH={path} has no main.py")
    return path


@pytest.fixture(scope="session")
def comfy_python(comfyui_dir) -> Path:
    py = _first_python(
        [
            os.environ.get("COMFYUI_PYTHON"),
            comfyui_dir / "venv/bin/python",
            comfyui_dir / ".venv/bin/python",
            integration_home() / "venv-comfy/bin/python",
        ]
    )
    if py is None:
        py = Path(sys.executable)
    check = subprocess.run([str(py), "-c", "import torch, aiohttp"], capture_output=True)
    if check.returncode != 0:
        pytest.skip(f"{py} cannot import torch/aiohttp: set COMFYUI_PYTHON to ComfyUI's interpreter")
    # The pack's own requirements (watchdog, ...) must be importable inside ComfyUI.
    has = subprocess.run([str(py), "-c", "import watchdog, PIL"], capture_output=True)
    if has.returncode != 0:
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "-r", str(REPO / "requirements.txt")], check=True
        )
    return py


@pytest.fixture(scope="session")
def kohya_dir() -> Path:
    value = os.environ.get("KOHYA_SS_PATH")
    if not value:
        pytest.skip(f"KOHYA_SS_PATH is not set: point it at an sd-scripts checkout ({SETUP_HINT})")
    path = Path(value)
    if not ((path / "train_network.py").is_file() or (path / "sd-scripts/train_network.py").is_file()):
        pytest.skip(f"KOHYA_SS_PATH={path} has no train_network.py (nor sd-scripts/train_network.py)")
    return path


@pytest.fixture(scope="session")
def kohya_python(kohya_dir) -> Path:
    py = _first_python(
        [
            os.environ.get("KOHYA_PYTHON"),
            kohya_dir / "venv/bin/python",
            kohya_dir / ".venv/bin/python",
            integration_home() / "venv-sdscripts/bin/python",
        ]
    )
    if py is None:
        pytest.skip(f"no python for sd-scripts: set KOHYA_PYTHON or create {kohya_dir}/venv")
    return py


@pytest.fixture(scope="session")
def test_checkpoint() -> Path:
    value = os.environ.get("LORA_WORKBENCH_TEST_CKPT") or str(
        integration_home() / "models/checkpoints/random_sd15.safetensors"
    )
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"no SD1.5 test checkpoint at {path}: set LORA_WORKBENCH_TEST_CKPT ({SETUP_HINT})")
    return path


@pytest.fixture(scope="session")
def tokenizer_cache() -> Path:
    value = os.environ.get("LORA_WORKBENCH_TOKENIZER_CACHE") or str(integration_home() / "tokenizer_cache")
    path = Path(value)
    if not (path / "openai_clip-vit-large-patch14").is_dir():
        pytest.skip(f"no offline CLIP tokenizer at {path}/openai_clip-vit-large-patch14 ({SETUP_HINT})")
    return path


@pytest.fixture(scope="session")
def smoke_images() -> Path:
    """The small dataset's subset folder (images/2_testsubject: 4 PNGs with captions); copy it, never write it."""
    path = smoke_images_dir()
    if not path.is_dir():
        pytest.skip(f"no small dataset at {path}: set LORA_WORKBENCH_TEST_DATASET ({SETUP_HINT})")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ComfyServer:
    url: str
    port: int
    log_path: Path
    home: Path  # scratch folder: models/, output/, projects/
    models_dir: Path
    output_dir: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get_json(self, route: str):
        with urllib.request.urlopen(self.url + route, timeout=30) as r:
            return json.loads(r.read())


def start_comfy(
    comfyui_dir: Path,
    python: Path,
    home: Path,
    env_extra: dict | None = None,
    extra_args: tuple[str, ...] = (),
    checkpoint: Path | None = None,
) -> ComfyServer:
    """Start ComfyUI on 127.0.0.1 with this pack reached through an extra_model_paths custom_nodes entry."""
    home.mkdir(parents=True, exist_ok=True)
    nodes_dir = home / "custom_nodes"
    nodes_dir.mkdir(exist_ok=True)
    link = nodes_dir / "lora-workbench"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    models = home / "models"
    for sub in ("checkpoints", "loras", "vae", "embeddings"):
        (models / sub).mkdir(parents=True, exist_ok=True)
    if checkpoint is not None:
        dest = models / "checkpoints" / checkpoint.name
        if not dest.exists():
            dest.symlink_to(checkpoint)
    output = home / "output"
    output.mkdir(exist_ok=True)
    yaml = home / "extra_model_paths.yaml"
    yaml.write_text(
        "workbench_test:\n"
        f"    base_path: {models}\n"
        "    checkpoints: checkpoints\n    loras: loras\n    vae: vae\n    embeddings: embeddings\n"
        f"    custom_nodes: {nodes_dir}\n",
        encoding="utf-8",
    )
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LORA_WORKBENCH_ROOTS": str(home),
            "LORA_WORKBENCH_SETTINGS": str(home / "settings.json"),
        }
    )
    env.update(env_extra or {})
    log_path = home / f"comfy-{port}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    args = [
        str(python),
        "-u",
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--extra-model-paths-config",
        str(yaml),
        "--output-directory",
        str(output),
        *extra_args,
    ]
    proc = subprocess.Popen(
        args, cwd=comfyui_dir, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    server = ComfyServer(f"http://127.0.0.1:{port}", port, log_path, home, models, output, proc)
    if "--quick-test-for-ci" in extra_args:
        return server
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"ComfyUI exited during start-up (rc {proc.returncode}):\n{server.log()[-4000:]}"
            )
        try:
            server.get_json("/object_info/CheckpointLoaderSimple")
            return server
        except Exception:
            time.sleep(1)
    stop_comfy(server)
    raise RuntimeError(f"ComfyUI did not answer within 180 s:\n{server.log()[-4000:]}")


def stop_comfy(server: ComfyServer) -> None:
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(20)
        except Exception:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


@pytest.fixture(scope="session")
def comfy_server(
    comfyui_dir, comfy_python, tmp_path_factory, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
):
    """A real ComfyUI with the pack, sd-scripts configured, and the SD1.5 test checkpoint listed."""
    home = tmp_path_factory.mktemp("comfy-home")
    env = {
        "KOHYA_SS_PATH": str(kohya_dir),
        "KOHYA_PYTHON": str(kohya_python),
        "LORA_WORKBENCH_TOKENIZER_CACHE": str(tokenizer_cache),
    }
    server = start_comfy(comfyui_dir, comfy_python, home, env, checkpoint=test_checkpoint)
    yield server
    stop_comfy(server)


def trainers_alive(marker: str) -> list[int]:
    """Live processes whose command line runs train_network.py with `marker` in it (zombies excluded)."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "train_network.py" in cmd and marker in cmd and pid_alive(proc.pid):
            out.append(proc.pid)
    return out
