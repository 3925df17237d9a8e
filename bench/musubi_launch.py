"""Run one musubi-tuner script as `python -m musubi_tuner.<name>` would, and say its peak GPU memory.

    python musubi_launch.py MODULE [ARGS...]      e.g. musubi_launch.py wan_cache_latents --vae ...
    python musubi_launch.py --parse-only MODULE [ARGS...]   only musubi's own argument parser: exit 0
                                                            and "ARGS OK", or argparse's error (2)

On a machine without CUDA it first makes `torch.cuda.current_device()` answer 0: musubi's
wan/modules/t5.py evaluates it at import time as a default argument, which stops every Wan script on
a CPU before it starts (the CPU runs pass --device cpu everywhere, so the 0 is never used). At exit
it prints `PEAK_GPU_MIB=<n>` (torch's max_memory_allocated) where a GPU was used.
"""

from __future__ import annotations

import atexit
import runpy
import sys

import torch


def _report_peak() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        print(f"PEAK_GPU_MIB={torch.cuda.max_memory_allocated() / 2**20:.0f}", flush=True)


def _parse_only() -> None:
    """The script's first parse_args() is the whole check: stop right after it succeeds."""
    import argparse

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, *a, **kw):
        original(self, *a, **kw)
        print("ARGS OK", flush=True)
        sys.exit(0)

    argparse.ArgumentParser.parse_args = parse_then_stop


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--parse-only":
        _parse_only()
        del sys.argv[1]
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if not torch.cuda.is_available():
        torch.cuda.current_device = lambda: 0
    atexit.register(_report_peak)
    module = sys.argv[1] if sys.argv[1].startswith("musubi_tuner.") else "musubi_tuner." + sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
