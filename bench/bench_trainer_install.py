"""Benchmark the managed trainer's install (not a test; prints figures and ratios).

    python bench/bench_trainer_install.py --source SD_SCRIPTS_CLONE [--repeat 5] [--first-repeat 1]
        [--torch-spec "torch==2.14.1 torchvision==0.29.1"] [--comfy-python PY] [--comfyui DIR]
        [--skip-first] [--home DIR] [other `trainer install` options, e.g. --python PY]

1. the second install (nothing changed), through the CLI as a user runs it, best and median of
   REPEAT, against `lora-workbench --version` (the CLI's own start) measured in the same run;
   target <= 3 s
2. the first install into an empty LORA_WORKBENCH_HOME with `--torch auto` (the torch of
   --comfy-python, default COMFYUI_PYTHON) against the same install with an explicit spec
   (the baseline): wall time and bytes downloaded (the sizes pip's log gives for each
   `Downloading` line, and the growth of pip's cache folder); ratios auto / explicit

Each first install builds a full venv (gigabytes); each is deleted when measured.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lora_workbench.trainer_env import pins  # noqa: E402

SIZE_RE = re.compile(r"^\s*Downloading \S+ \(([\d.]+) (kB|MB|GB|bytes)\)")
UNIT = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def cli(home: Path, *args: str, check: bool = True) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("KOHYA_SS_PATH", "KOHYA_PYTHON")}
    env["LORA_WORKBENCH_HOME"] = str(home)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lora_workbench", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if check and done.returncode != 0:
        raise SystemExit(f"lora-workbench {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return wall


def downloaded(home: Path) -> float:
    """Bytes pip says it downloaded, summed over every pip.log of the install."""
    total = 0.0
    for log in home.glob("trainers/sd-scripts/*/build/pip.log"):
        for line in log.read_text(errors="replace").splitlines():
            m = SIZE_RE.match(line)
            if m:
                total += float(m.group(1)) * UNIT[m.group(2)]
    return total


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def pip_cache() -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
    return Path(done.stdout.strip() or Path.home() / ".cache" / "pip")


def first_install(args, torch: str, label: str) -> tuple[float, float, int]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-trainer-{label}-"))
    cache, before = pip_cache(), folder_bytes(pip_cache())
    try:
        extra = ["--comfy-python", args.comfy_python] if args.comfy_python else []
        extra += ["--comfyui", args.comfyui] if args.comfyui else []
        wall = cli(home, "trainer", "install", "--source", args.source, "--torch", torch, *extra)
        return wall, downloaded(home), folder_bytes(cache) - before
    finally:
        shutil.rmtree(home, ignore_errors=True)


def second_install(args) -> None:
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench-trainer-second-"))
    try:
        install = [
            "trainer",
            "install",
            "--source",
            args.source,
            "--torch",
            args.torch_spec,
            *args.install_args,
        ]
        install += ["--comfyui", args.comfyui] if args.comfyui else []
        cli(home, *install)
        base = [cli(home, "--version") for _ in range(args.repeat)]
        again = [cli(home, *install) for _ in range(args.repeat)]
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    print(f"second install: best {min(again):.2f} s, median {statistics.median(again):.2f} s (target <= 3 s)")
    print(f"  CLI start alone (--version): best {min(base):.2f} s, median {statistics.median(base):.2f} s")
    print(
        f"  ratio second install / CLI start (medians): {statistics.median(again) / statistics.median(base):.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--source", default=os.environ.get("LORA_WORKBENCH_TRAINER_SOURCE"), help="sd-scripts clone"
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--first-repeat", type=int, default=1, help="first installs of each kind (minutes each)")
    ap.add_argument("--torch-spec", default=" ".join(pins.FALLBACK_TORCH), help="the explicit baseline")
    ap.add_argument(
        "--comfy-python", default=os.environ.get("COMFYUI_PYTHON"), help="whose torch auto matches"
    )
    ap.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI's folder (tokenizers)")
    ap.add_argument("--skip-first", action="store_true", help="only the second install")
    ap.add_argument("--home", help="measure the second install in this LORA_WORKBENCH_HOME (kept)")
    args, args.install_args = ap.parse_known_args()  # the rest goes to `trainer install` (--python ...)
    if not args.source:
        raise SystemExit("give --source (or LORA_WORKBENCH_TRAINER_SOURCE): a local sd-scripts clone")
    second_install(args)
    if args.skip_first:
        return 0
    runs = {"explicit": [], "auto": []}
    for _ in range(args.first_repeat):
        runs["explicit"].append(first_install(args, args.torch_spec, "explicit"))
        runs["auto"].append(first_install(args, "auto", "auto"))
    for label, got in runs.items():
        walls = [w for w, _, _ in got]
        print(
            f"first install, --torch {label}: best {min(walls):.0f} s, median {statistics.median(walls):.0f} s; "
            f"downloaded {statistics.median([d for _, d, _ in got]) / 1e6:.1f} MB (pip's log), "
            f"pip cache grew {statistics.median([c for _, _, c in got]) / 1e6:.1f} MB"
        )
    med = {k: statistics.median([w for w, _, _ in v]) for k, v in runs.items()}
    dl = {k: statistics.median([d for _, d, _ in v]) for k, v in runs.items()}
    print(f"ratio auto / explicit: time {med['auto'] / med['explicit']:.2f}", end="")
    print(
        f", downloaded {dl['auto'] / dl['explicit']:.2f}"
        if dl["explicit"]
        else ", downloaded - (explicit: 0 bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
