"""Test double for sd-scripts' train_network.py / sdxl_train_network.py, run through --config_file.

Reads our config TOML like sd-scripts does, prints sd-scripts' progress format (stdout banner, `epoch
N/M`, `saving checkpoint: PATH`; the tqdm `steps:` bar on stderr) and writes LoRA files with kohya's
key names and `ss_*` metadata. It trains nothing. Environment switches:
FAKE_SD_LAUNCHES (append one line per launch to this file), FAKE_SD_FAIL (raise after step 1),
FAKE_SD_NO_FILE (exit 0 without saving), FAKE_SD_DISK_FULL (the final LoRA file is cut off and the
run fails with safetensors' "No space left on device", as sd-scripts does on a full disk), FAKE_SD_CRASH_AT_EPOCH (exit 1 when that epoch starts), FAKE_SD_SLEEP (seconds per step), FAKE_SD_CHILD_PIDFILE
(start a sleeping grandchild, like accelerate -> trainer), FAKE_SD_PER_EPOCH (batches per epoch, 4).
Like sd-scripts: `save_state` writes `<name>-NNNNNN-state/` (with train_state.json) beside each
per-epoch file and `<name>-state/` at the end; `resume` skips the epochs its state finished and counts
the steps bar from 0 again (total = max_train_steps); gradient_accumulation_steps divides the steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


def bar(n: int, total: int, loss: str | None) -> str:
    pct = int(100 * n / total)
    post = f", avr_loss={loss}" if loss else ""
    return f"\rsteps: {pct:3d}%|{'#' * (pct // 10):<10}| {n}/{total} [00:01<00:02,  1.50s/it{post}]"


def save(path: str, cfg: dict, epoch: int, steps: int) -> None:
    from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

    ds = tomllib.loads(open(cfg["dataset_config"], encoding="utf-8").read())
    dirs = {}
    for d in ds.get("datasets", []):
        for s in d.get("subsets", []):
            name = os.path.basename(s["image_dir"])
            dirs[name] = {"n_repeats": s.get("num_repeats", 1), "img_count": 4}
    tensors = {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": ("F16", [cfg["network_dim"], 320]),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": ("F16", [320, cfg["network_dim"]]),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": ("F16", []),
    }
    if not cfg.get("network_train_unet_only"):
        tensors["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = (
            "F16",
            [cfg["network_dim"], 768],
        )
    meta = {
        "ss_output_name": cfg["output_name"],
        "ss_epoch": str(epoch),
        "ss_steps": str(steps),
        "ss_network_dim": str(cfg["network_dim"]),
        "ss_dataset_dirs": json.dumps(dirs),
        "ss_tag_frequency": "{}",
        "ss_seed": str(cfg["seed"]),
    }
    write_safetensors_header_only(path, tensors, meta)


def save_state(folder: str, epoch: int, step: int) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "train_state.json"), "w") as f:
        json.dump({"current_epoch": epoch, "current_step": step}, f)
    with open(os.path.join(folder, "optimizer.bin"), "wb") as f:
        f.write(b"fake optimizer state %d" % step)
    with open(os.path.join(folder, "random_states_0.pkl"), "wb") as f:  # accelerate writes it last
        f.write(b"fake rng state")


def resumed_epochs(cfg: dict, per_epoch: int) -> int:
    """The epochs a resumed state finished (sd-scripts: its current_step // steps per epoch)."""
    if not cfg.get("resume"):
        return 0
    with open(os.path.join(cfg["resume"], "train_state.json")) as f:
        step = json.load(f)["current_step"]
    sys.stderr.write(f"INFO     load train state from {cfg['resume']}: step {step}\n")
    return step // per_epoch


def disk_full(path: str, cfg: dict, epoch: int, step: int) -> int:
    """What sd-scripts leaves when the disk fills while it saves: a cut-off file and this traceback."""
    save(path, cfg, epoch, step)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    sys.stderr.write(
        "\nTraceback (most recent call last):\n"
        '  File "/opt/sd-scripts/train_network.py", line 1232, in save_model\n'
        "    unwrapped_nw.save_weights(ckpt_file, save_dtype, metadata_to_save)\n"
        '  File "/opt/venv/lib/python3.10/site-packages/safetensors/torch.py", line 286, in save_file\n'
        "    serialize_file(_flatten(tensors), filename, metadata=metadata)\n"
        "safetensors_rust.SafetensorError: Error while serializing: IoError(Os { code: 28, kind: "
        'StorageFull, message: "No space left on device" })\n'
    )
    return 1


def main() -> int:
    argv = sys.argv[1:]
    cfg_path = argv[argv.index("--config_file") + 1]
    raw = tomllib.loads(open(cfg_path, encoding="utf-8").read())
    cfg: dict = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            cfg.update(v)
        else:
            cfg[k] = v
    if os.environ.get("FAKE_SD_LAUNCHES"):
        with open(os.environ["FAKE_SD_LAUNCHES"], "a") as f:
            f.write(" ".join(argv) + "\n")
    if os.environ.get("FAKE_SD_CHILD_PIDFILE"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(os.environ["FAKE_SD_CHILD_PIDFILE"], "w") as f:
            f.write(str(child.pid))
    per_epoch = math.ceil(
        int(os.environ.get("FAKE_SD_PER_EPOCH", "4")) / cfg.get("gradient_accumulation_steps", 1)
    )
    if "max_train_epochs" in cfg:
        epochs = cfg["max_train_epochs"]
        total = epochs * per_epoch
    else:
        total = cfg["max_train_steps"]
        epochs = math.ceil(total / per_epoch)
    out_dir, name = cfg["output_dir"], cfg["output_name"]
    sleep = float(os.environ.get("FAKE_SD_SLEEP", "0"))
    err, out = sys.stderr, sys.stdout
    err.write("2026-11-25 02:59:51 INFO     Loading settings from config.toml...      train_util.py:4744\n")
    out.write(
        f"running training / 学習開始\n  num epochs / epoch数: {epochs}\n"
        f"  total optimization steps / 学習ステップ数: {total}\n"
    )
    out.flush()
    err.write(bar(0, total, None))
    err.flush()
    step = 0
    start = resumed_epochs(cfg, per_epoch)
    for epoch in range(start + 1, epochs + 1):
        out.write(f"\nepoch {epoch}/{epochs}\n")
        out.flush()
        if os.environ.get("FAKE_SD_CRASH_AT_EPOCH") == str(epoch):  # a crash after the states before it
            err.write("\nTraceback (most recent call last):\nRuntimeError: the machine fell over\n")
            return 1
        for _ in range(per_epoch):
            if step >= total:
                break
            step += 1
            if sleep:
                time.sleep(sleep)
            if os.environ.get("FAKE_SD_FAIL") and step > 1:
                err.write(
                    '\nTraceback (most recent call last):\n  File "train_network.py", line 1, in <module>\n'
                    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
                )
                err.flush()
                return 1
            err.write(bar(step, total, f"{1.0 / step:.3g}") + bar(step, total, f"{1.0 / step:.3g}"))
            err.flush()
        every = cfg.get("save_every_n_epochs") or 0
        if every and epoch % every == 0 and epoch < epochs and not os.environ.get("FAKE_SD_NO_FILE"):
            path = os.path.join(out_dir, f"{name}-{epoch:06d}.safetensors")
            save(path, cfg, epoch, step)
            out.write(f"\nsaving checkpoint: {path}\n")
            out.flush()
            if cfg.get("save_state"):
                save_state(
                    os.path.join(out_dir, f"{name}-{epoch:06d}-state"), epoch, start * per_epoch + step
                )
        if cfg.get("sample_prompts"):
            os.makedirs(os.path.join(out_dir, "sample"), exist_ok=True)
            from PIL import Image

            Image.new("RGB", (8, 8), (epoch * 40, 0, 0)).save(
                os.path.join(out_dir, "sample", f"{name}_e{epoch:06d}_00_20261125000000.png")
            )
    if os.environ.get("FAKE_SD_NO_FILE"):
        err.write("\n2026-11-25 02:59:59 INFO     something odd happened      train_network.py:1\n")
        return 0
    if cfg.get("save_state") or cfg.get("save_state_on_train_end"):
        save_state(os.path.join(out_dir, f"{name}-state"), epochs, start * per_epoch + step)
    path = os.path.join(out_dir, f"{name}.safetensors")
    if os.environ.get("FAKE_SD_DISK_FULL"):
        return disk_full(path, cfg, epochs, step)
    save(path, cfg, epochs, step)
    out.write(f"\nsaving checkpoint: {path}\n")
    err.write("\n2026-11-25 03:00:00 INFO     model saved.        train_network.py:1729\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
