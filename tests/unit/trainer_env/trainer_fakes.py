"""Tiny sd-scripts and musubi-tuner git repositories and a stand-in for venv, pip and the trainer's checks.

git runs for real against the tiny repository; the venv, pip and the checks are answered by
`FakeTools`, which can fail pip the way pip fails, or stop ("kill") the install before or after any
tool call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lora_workbench.trainer_env import procs
from lora_workbench.trainer_env.install import CHECK_PREFIX
from lora_workbench.trainer_env.plan import InstallRequest
from lora_workbench.trainer_env.torch_pick import parse_spec

REQUIREMENTS = "accelerate==1.6.0\nbitsandbytes\ntoml==0.10.2\n# for kohya_ss library\n-e .\n"
PIP_ERROR = [
    "Collecting no-such-package==9.9 (from -r requirements.txt (line 2))",
    "ERROR: Could not find a version that satisfies the requirement no-such-package==9.9 (from versions: none)",
    "ERROR: No matching distribution found for no-such-package==9.9",
]


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, no cleanup code catches it."""


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path, requirements: str = REQUIREMENTS) -> tuple[Path, str]:
    """A git repository that looks like sd-scripts; returns (folder, commit)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    (root / "train_network.py").write_text("print('usage: train_network.py')\n", encoding="utf-8")
    (root / "requirements.txt").write_text(requirements, encoding="utf-8")
    (root / "library").mkdir(exist_ok=True)
    (root / "library" / "__init__.py").write_text("", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "sd-scripts")
    return root, git(root, "rev-parse", "HEAD")


MUSUBI_PYPROJECT = '[project]\nname = "musubi-tuner"\ndependencies = ["accelerate==1.6.0", "toml==0.10.2"]\n'


def make_musubi_repo(root: Path, pyproject: str = MUSUBI_PYPROJECT) -> tuple[Path, str]:
    """A git repository that looks like musubi-tuner (a pyproject, src/musubi_tuner/); (folder, commit)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    pkg = root / "src" / "musubi_tuner"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    for script in ("wan_train_network.py", "qwen_image_train_network.py"):
        (pkg / script).write_text(f"print('usage: {script}')\n", encoding="utf-8")
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "musubi-tuner")
    return root, git(root, "rev-parse", "HEAD")


def commit_change(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text, encoding="utf-8")
    git(repo, "commit", "-q", "-am", f"change {name}")
    return git(repo, "rev-parse", "HEAD")


def request(source: Path, ref: str, torch: str = "torch==2.14.1 torchvision==0.29.1", **kw) -> InstallRequest:
    """An install request from a local repository (sd-scripts unless trainer= says otherwise)."""
    return InstallRequest(torch=parse_spec(torch), python="python3", source=str(source), ref=ref, **kw)


def kind_of(argv: list[str]) -> str:
    if argv[0] == "git":
        return "git"
    if argv[1:3] == ["-m", "venv"]:
        return "venv"
    if argv[1:3] == ["-m", "pip"]:
        return "pip"
    if argv[1] == "-c":
        return "check"
    return "help" if argv[1].endswith("train_network.py") else "other"


class FakeTools:
    def __init__(self, pip_fails: bool = False, kill: str | None = None, check_fails: bool = False):
        self.pip_fails = pip_fails
        self.check_fails = check_fails
        self.kill = kill  # "<kind>-before" or "<kind>-after"
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, argv, *, cwd=None, log=None, on_line=None, cancel=None) -> procs.RunResult:
        kind = kind_of(argv)
        self.calls.append((kind, list(argv)))
        if self.kill == f"{kind}-before":
            raise Killed(kind)
        result = self._answer(kind, argv, cwd, log, on_line, cancel)
        if self.kill == f"{kind}-after":
            raise Killed(kind)
        return result

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]

    def _answer(self, kind, argv, cwd, log, on_line, cancel) -> procs.RunResult:
        if kind == "git":
            return procs.run(argv, cwd=cwd, log=log, on_line=on_line, cancel=cancel)
        if kind == "venv":
            python = Path(argv[3]) / "bin" / "python"
            python.parent.mkdir(parents=True, exist_ok=True)
            python.write_text("#!/bin/sh\n", encoding="utf-8")
            return procs.RunResult(0, [])
        if kind == "pip":
            lines = (
                PIP_ERROR
                if self.pip_fails
                else ["Collecting torch==2.14.1", "Successfully installed torch-2.14.1"]
            )
            for line in lines:
                if on_line:
                    on_line(line)
            return procs.RunResult(1 if self.pip_fails else 0, lines)
        if kind == "check":
            if self.check_fails:
                return procs.RunResult(
                    1,
                    [
                        "Traceback (most recent call last):",
                        "ModuleNotFoundError: No module named 'accelerate'",
                    ],
                )
            found = {
                "python": "3.11.7",
                "torch": "2.14.1",
                "cuda": None,
                "accelerate": "1.6.0",
                "gpu": "",
                "mps": False,
            }
            return procs.RunResult(0, [CHECK_PREFIX + json.dumps(found)])
        return procs.RunResult(0, ["usage: train_network.py [-h]"])


def make_comfyui(root: Path) -> Path:
    """A ComfyUI folder with comfy/sd1_tokenizer as ComfyUI ships it (model_max_length 8192)."""
    tok = root / "comfy" / "sd1_tokenizer"
    tok.mkdir(parents=True)
    (tok / "vocab.json").write_text('{"a": 0}', encoding="utf-8")
    (tok / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (tok / "special_tokens_map.json").write_text("{}", encoding="utf-8")
    config = {"model_max_length": 8192, "special_tokens_map_file": "x", "do_lower_case": True}
    (tok / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return root
