"""Benchmark: what importing the pack costs a running ComfyUI (target <= 20 ms).

    COMFYUI_PATH=... [COMFYUI_PYTHON=...] python bench/bench_pack_import.py [--rounds 7] [--modules] [--cold]

Each measurement is a fresh ComfyUI interpreter that first loads what ComfyUI has loaded before it
turns to custom_nodes (`folder_paths`, `comfy.*`, `execution`, `server`, `nodes`, a PromptServer),
then loads one pack folder exactly as `nodes.load_custom_node` does (spec_from_file_location on the
folder's __init__.py, registered in sys.modules under its path) and times that. Rounds alternate
(ABBA) this pack with a trivial one-node pack measured the same way, and the script prints best and
median of both. Python's bytecode cache is on, as in any ComfyUI started before (one warm-up load
writes it); `--cold` measures without it (every module compiled from source, as on the very first
start or with PYTHONDONTWRITEBYTECODE). `--modules` lists the modules the pack added and the slowest of them
(`-X importtime`). Skips with a message when COMFYUI_PATH is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 20.0

# Runs inside ComfyUI's interpreter: argv = [comfyui_dir, pack_dir].
PROBE = r"""
import asyncio, importlib.util, json, logging, os, sys, time
comfy_dir, pack_dir = sys.argv[1], sys.argv[2]
sys.argv = [sys.argv[0], "--cpu", "--disable-auto-launch"]
sys.path.insert(0, comfy_dir)
os.chdir(comfy_dir)
logging.disable(logging.WARNING)
import comfy.options
comfy.options.enable_args_parsing()  # cli_args reads --cpu, so nothing probes CUDA
import folder_paths, utils.extra_config  # main.py's order: ComfyUI's utils/ before comfy.utils
import comfy.model_management, comfy.sd, comfy.utils, execution, server, nodes
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
server.PromptServer(loop)
before = set(sys.modules)
name = pack_dir.replace(".", "_x_")
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location(name, os.path.join(pack_dir, "__init__.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
took = time.perf_counter() - t0
print("@@" + json.dumps({"ms": took * 1000, "nodes": sorted(module.NODE_CLASS_MAPPINGS),
                         "modules": sorted(set(sys.modules) - before)}))
"""

TRIVIAL_PACK = """
class TrivialNode:
    CATEGORY = "bench"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "", "tooltip": "any text"})}}

    def run(self, text):
        return (text,)


NODE_CLASS_MAPPINGS = {"TrivialNode": TrivialNode}
NODE_DISPLAY_NAME_MAPPINGS = {"TrivialNode": "Trivial Node"}
"""


def comfy_python(comfyui: Path) -> str:
    for candidate in (
        os.environ.get("COMFYUI_PYTHON"),
        comfyui / "venv/bin/python",
        comfyui / ".venv/bin/python",
    ):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return sys.executable


def probe_env(cold_cache: str | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cold_cache:  # an empty cache that is never written: every module compiled from source
        env.update(PYTHONPYCACHEPREFIX=cold_cache, PYTHONDONTWRITEBYTECODE="1")
    return env


def measure(python: str, comfyui: Path, pack: Path, env: dict, importtime: bool = False) -> dict:
    argv = [python, *(["-X", "importtime"] if importtime else []), "-c", PROBE, str(comfyui), str(pack)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("@@")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"the ComfyUI probe failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(line[2:])
    result["importtime"] = out.stderr if importtime else ""
    return result


def slowest_imports(importtime: str, modules: list[str], count: int = 12) -> list[tuple[int, str]]:
    """(self microseconds, module) for the pack's own modules, slowest first."""
    wanted = set(modules)
    rows = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:") :].split("|")]
        if parts[2].strip() in wanted and parts[0].isdigit():
            rows.append((int(parts[0]), parts[2].strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="measurements of each pack, alternated (default 7)")
    ap.add_argument("--modules", action="store_true", help="list the modules the pack imports, slowest first")
    ap.add_argument(
        "--cold", action="store_true", help="without Python's bytecode cache (compile every module)"
    )
    args = ap.parse_args()
    if not os.environ.get("COMFYUI_PATH"):
        print("SKIP: COMFYUI_PATH is not set (scripts/integration-env.sh builds a ComfyUI and prints it)")
        return 0
    comfyui = Path(os.environ["COMFYUI_PATH"]).resolve()
    python = comfy_python(comfyui)
    with tempfile.TemporaryDirectory(prefix="bench-pack-import-") as tmp:
        trivial = Path(tmp) / "trivial_pack"
        trivial.mkdir()
        (trivial / "__init__.py").write_text(TRIVIAL_PACK, encoding="utf-8")
        cold = Path(tmp) / "empty-pycache"
        cold.mkdir()
        env = probe_env(str(cold) if args.cold else None)
        if not args.cold:  # warm-up: write the bytecode cache, as ComfyUI's first start does
            for pack in (REPO, trivial):
                measure(python, comfyui, pack, env)
        ours: list[float] = []
        base: list[float] = []
        for r in range(args.rounds):
            for kind in ("pack", "trivial") if r % 2 == 0 else ("trivial", "pack"):
                got = measure(python, comfyui, REPO if kind == "pack" else trivial, env)
                (ours if kind == "pack" else base).append(got["ms"])
                print(
                    f"round {r + 1} {kind:<8} {got['ms']:7.2f} ms  ({len(got['modules'])} modules)",
                    flush=True,
                )
        if args.modules:
            got = measure(python, comfyui, REPO, env, importtime=True)
            print(f"\nthe pack's nodes: {', '.join(got['nodes'])}")
            print(f"modules the pack added ({len(got['modules'])}): {' '.join(got['modules'])}")
            print("slowest (self time, -X importtime):")
            for us, mod in slowest_imports(got["importtime"], got["modules"]):
                print(f"  {us / 1000:7.2f} ms  {mod}")
    cache = "without bytecode cache (--cold)" if args.cold else "bytecode cached"
    print(
        f"\npack import inside ComfyUI, {cache}: best {min(ours):.2f} ms, median {statistics.median(ours):.2f} ms "
        f"(target <= {TARGET_MS:.0f} ms)"
    )
    print(
        f"trivial one-node pack (baseline): best {min(base):.2f} ms, median {statistics.median(base):.2f} ms"
    )
    print(f"pack minus baseline (medians): {statistics.median(ours) - statistics.median(base):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
