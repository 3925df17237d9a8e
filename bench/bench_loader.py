"""Benchmark LoadTrainedLoRA against ComfyUI's own LoraLoader, in one real ComfyUI process (CPU).

    COMFYUI_PATH=... $COMFYUI_PYTHON bench/bench_loader.py [--ckpt CKPT] [--lora LORA] [--repeats N]

Both nodes apply the same LoRA file to the same loaded checkpoint (ComfyUI's comfy.sd path):
  cold     a fresh node instance (no in-node cache; the file is in the OS page cache after round 1)
  warm     the same instance again, file unchanged (both reuse their loaded state dict)
  re-run   what ComfyUI pays to skip an unchanged node: our IS_CHANGED (path + mtime + size)
Prints medians and the ratio LoadTrainedLoRA / LoraLoader (target: <= 1.05x cold).
The checkpoint and ComfyUI come from the variables scripts/integration-env.sh prints; the LoRA is
--lora or $LORA_WORKBENCH_BENCH_LORA (train one with `lora-workbench train` on that checkpoint).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import _integration as integration  # noqa: E402  (beside this script)

REPO = Path(__file__).resolve().parents[1]


def import_comfy(comfy_dir: Path):
    sys.argv = [sys.argv[0], "--cpu"]
    sys.path.insert(0, str(comfy_dir))
    os.chdir(comfy_dir)
    import comfy.options

    comfy.options.enable_args_parsing()  # else cli_args ignores --cpu and probes CUDA
    import comfy.sd
    import folder_paths

    import nodes as comfy_nodes  # ComfyUI's nodes.py (LoraLoader)

    return comfy.sd, folder_paths, comfy_nodes


def import_pack():
    """Import the pack as ComfyUI does: a package from the folder, under its own name."""
    spec = importlib.util.spec_from_file_location(
        "lora_workbench_bench_pack", REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--comfyui", default=os.environ.get("COMFYUI_PATH", str(integration.integration_home() / "ComfyUI"))
    )
    ap.add_argument("--ckpt", default=str(integration.test_checkpoint()))
    ap.add_argument("--lora", default=os.environ.get("LORA_WORKBENCH_BENCH_LORA", ""))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    lora = Path(args.lora).resolve()
    if not lora.is_file():
        print(f"no LoRA at {lora}: train one (lora-workbench train) and pass --lora", file=sys.stderr)
        return 2

    comfy_sd, folder_paths, comfy_nodes = import_comfy(Path(args.comfyui))
    folder_paths.add_model_folder_path("loras", str(lora.parent), is_default=True)
    pack = import_pack()
    ours_cls = pack.NODE_CLASS_MAPPINGS["LoadTrainedLoRA"]
    stock_cls = comfy_nodes.LoraLoader

    t_ckpt, out = timed(
        lambda: comfy_sd.load_checkpoint_guess_config(args.ckpt, output_vae=True, output_clip=True)
    )
    model, clip = out[0], out[1]
    print(
        f"checkpoint {Path(args.ckpt).name} loaded in {t_ckpt:.1f} s; LoRA {lora.name} "
        f"({lora.stat().st_size / 1e6:.1f} MB)"
    )
    name = lora.name
    results: dict[str, list[float]] = {
        "stock cold": [],
        "ours cold": [],
        "stock warm": [],
        "ours warm": [],
        "ours re-run (IS_CHANGED)": [],
    }

    def stock_round() -> None:
        node = stock_cls()
        results["stock cold"].append(timed(lambda: node.load_lora(model, clip, name, 1.0, 1.0))[0])
        results["stock warm"].append(timed(lambda: node.load_lora(model, clip, name, 1.0, 1.0))[0])

    def ours_round() -> None:
        node = ours_cls()
        results["ours cold"].append(timed(lambda: node.load(model, name, 0, 1.0, 1.0, clip=clip))[0])
        results["ours warm"].append(timed(lambda: node.load(model, name, 0, 1.0, 1.0, clip=clip))[0])
        results["ours re-run (IS_CHANGED)"].append(
            timed(lambda: ours_cls.IS_CHANGED(lora_name=name, epoch=0))[0]
        )

    stock_round()  # untimed warm-up: imports, page cache
    ours_round()
    for k in results:
        results[k].clear()
    for i in range(args.repeats):
        # alternate who goes first, so neither always gets the warmer caches
        for fn in (stock_round, ours_round) if i % 2 == 0 else (ours_round, stock_round):
            fn()
    res = ours_cls().load(model, name, 0, 1.0, 1.0, clip=clip)

    med = {k: statistics.median(v) for k, v in results.items()}
    low = {k: min(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"{k:28s} median {v * 1000:8.2f} ms   min {low[k] * 1000:8.2f} ms   ({len(results[k])} runs)")
    for kind in ("cold", "warm"):
        print(
            f"ratio {kind}  LoadTrainedLoRA / LoraLoader = {med[f'ours {kind}'] / med[f'stock {kind}']:.3f}x median, "
            f"{low[f'ours {kind}'] / low[f'stock {kind}']:.3f}x min"
            + ("  (target <= 1.05x)" if kind == "cold" else "")
        )
    print(f"trigger words: {res[2]!r}")

    # Staleness: rewrite the file's mtime; the stock loader keeps its cached state dict, ours reloads.
    stock, ours = stock_cls(), ours_cls()
    stock.load_lora(model, clip, name, 1.0, 1.0)
    ours.load(model, name, 0, 1.0, 1.0, clip=clip)
    before_stock, before_ours = id(stock.loaded_lora[1]), id(ours.loaded[1])
    os.utime(lora)
    stock.load_lora(model, clip, name, 1.0, 1.0)
    ours.load(model, name, 0, 1.0, 1.0, clip=clip)
    print(
        f"after touching the file: LoraLoader reloaded={id(stock.loaded_lora[1]) != before_stock}, "
        f"LoadTrainedLoRA reloaded={id(ours.loaded[1]) != before_ours}"
    )

    # Model-only use of a LoRA with text-encoder weights: count ComfyUI's per-key warnings.
    import logging

    class Count(logging.Handler):
        def __init__(self):
            super().__init__()
            self.n = 0

        def emit(self, record):
            self.n += "lora key not loaded" in record.getMessage()

    counter = Count()
    logging.getLogger().addHandler(counter)
    comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(model, name, 1.0)
    stock_warnings, counter.n = counter.n, 0
    ours_cls().load(model, name, 0, 1.0, 1.0, clip=None)
    print(
        f"model-only, 'lora key not loaded' lines: LoraLoaderModelOnly={stock_warnings}, "
        f"LoadTrainedLoRA={counter.n}; model family seen: "
        f"{pack.nodes.load_trained_lora.model_family(model)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
