"""For CPU runs of musubi-tuner only (put this folder on PYTHONPATH): on a machine without CUDA,
`torch.cuda.current_device()` answers 0 instead of raising. musubi's wan/modules/t5.py evaluates it at
import time as a default argument, so every Wan and FramePack script stops on a CPU before it starts;
the CPU runs pass --device cpu everywhere, and the 0 is never used. bench/musubi_launch.py does the same
for the bench's own steps; this reaches the processes the pack starts (accelerate launch included)."""

import importlib.util

if importlib.util.find_spec("torch") is not None:
    import torch

    if not torch.cuda.is_available():
        torch.cuda.current_device = lambda: 0
