"""Test double for sd-scripts' train_network.py: prints its output format, trains nothing.

stderr: rich-like records and the tqdm `steps:` bar with `\\r` refreshes (two per step: update(1) with
the previous avr_loss, then set_postfix with the new one), a record glued to the bar, an unlabelled
bar and a `validation steps:` bar that are not training steps. stdout: the banner with
`total optimization steps`, `epoch N/M`, `saving checkpoint: PATH`. Options make it fail, report no
data, spawn a grandchild (like `accelerate launch` -> trainer), ignore SIGINT, or write everything at
once just before exiting (a fast run whose output arrives in one read).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import time


def bar(
    desc: str,
    n: int,
    total: int,
    elapsed: float,
    rate_s_it: float | None,
    loss: str | None,
    it_per_s: bool = False,
) -> str:
    pct = int(100 * n / total) if total else 0
    fill = int(10 * n / total) if total else 0
    el = f"{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}"
    if rate_s_it is None:
        rem, rate = "?", "?it/s"
    else:
        r = rate_s_it * (total - n)
        rem = f"{int(r) // 60:02d}:{int(r) % 60:02d}"
        rate = f"{1 / rate_s_it:5.2f}it/s" if it_per_s else f"{rate_s_it:5.2f}s/it"
    post = f", avr_loss={loss}" if loss is not None else ""
    prefix = f"{desc}: " if desc else ""
    return f"\r{prefix}{pct:3d}%|{'█' * fill}{' ' * (10 - fill)}| {n}/{total} [{el}<{rem}, {rate}{post}]"


def record(level: str, msg: str) -> str:
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level:<8} {msg:<40} train_network.py:123\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per step")
    ap.add_argument("--fail", type=int, default=0, help="raise after this step (0: never)")
    ap.add_argument("--no-data", action="store_true")
    ap.add_argument(
        "--spawn-child", metavar="PIDFILE", help="start a sleeping grandchild, write its pid here"
    )
    ap.add_argument("--ignore-sigint", action="store_true")
    ap.add_argument("--output", default="", help="checkpoint file to write at the end")
    ap.add_argument("--fast", action="store_true", help="print it/s rates")
    ap.add_argument("--nan", action="store_true", help="avr_loss=nan from step 2")
    ap.add_argument(
        "--output_dir", default="", help="with --sample-at: sample images go to OUTPUT_DIR/sample"
    )
    ap.add_argument("--sample-at", type=int, default=0, help="write a sample image after this step")
    ap.add_argument(
        "--replay", metavar="LOG", help="write this captured log to stderr in small chunks and exit"
    )
    ap.add_argument("--exit", type=int, default=0, help="exit code after --replay")
    ap.add_argument(
        "--at-once", action="store_true", help="hold all output back, write it in one go and exit"
    )
    args = ap.parse_args()
    err, out = sys.stderr, sys.stdout
    if args.at_once:
        err, out = io.StringIO(), io.StringIO()
        with open("fake_trainer.pid", "w") as f:  # in the working directory
            f.write(str(os.getpid()))
    if args.replay:
        data = open(args.replay, "rb").read()
        for i in range(0, len(data), 997):  # odd chunk size: splits records, bars and UTF-8 sequences
            sys.stderr.buffer.write(data[i : i + 997])
            sys.stderr.buffer.flush()
        return args.exit

    if args.ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.spawn_child:
        code = "import signal, time\n"
        if args.ignore_sigint:
            code += "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        code += "time.sleep(120)\n"
        child = subprocess.Popen([sys.executable, "-c", code])
        with open(args.spawn_child, "w") as f:
            f.write(str(child.pid))

    err.write(record("INFO", "Using DreamBooth method."))
    err.write(bar("", 0, 4, 0, None, None) + bar("", 4, 4, 0, 0.00001, None, True) + "\n")
    if args.no_data:
        err.write(
            record(
                "ERROR",
                "No data found. Please verify arguments (train_data_dir must be the "
                "parent of folders with images)",
            )
        )
        err.flush()
        return 0
    err.write(record("INFO", "use AdamW optimizer | {}"))
    err.flush()
    per_epoch = max(1, args.steps // args.epochs)
    out.write(
        f"running training / 学習開始\n  num epochs / epoch数: {args.epochs}\n"
        f"  total optimization steps / 学習ステップ数: {args.steps}\n"
    )
    out.flush()
    err.write(bar("steps", 0, args.steps, 0, None, None))
    err.flush()
    start = time.monotonic()
    loss = None
    for step in range(1, args.steps + 1):
        if (step - 1) % per_epoch == 0:
            epoch = (step - 1) // per_epoch + 1
            out.write(f"\nepoch {epoch}/{args.epochs}\n")
            out.flush()
            if step == 1:
                err.write(record("INFO", f"epoch is incremented. current_epoch: 0, epoch: {epoch}"))
        if args.sleep:
            time.sleep(args.sleep)
        if args.fail and step > args.fail:
            raise ValueError(f"fake failure at step {step}")
        elapsed = time.monotonic() - start
        rate = max(elapsed / step, 0.001)
        err.write(bar("steps", step, args.steps, elapsed, rate, loss, args.fast))
        loss = "nan" if args.nan and step >= 2 else f"{1.0 / step:.3g}"
        err.write(bar("steps", step, args.steps, elapsed, rate, loss, args.fast))
        err.flush()
        if step == args.sample_at:
            err.write(
                "\n" + record("INFO", f"generating sample images at step / サンプル画像生成 ステップ: {step}")
            )
            err.flush()
            os.makedirs(os.path.join(args.output_dir, "sample"), exist_ok=True)
            with open(os.path.join(args.output_dir, "sample", f"x_{step:06d}_00.png"), "wb") as f:
                f.write(b"png")
        if step == 2:
            err.write("\r" + bar("validation steps", 1, 1, 0, 0.5, None)[1:] + "\n")
    if args.output:
        out.write(f"\nsaving checkpoint: {args.output}\n")
        out.flush()
        with open(args.output, "wb") as f:
            f.write(b"fake")
    err.write(" " + record("INFO", "model saved."))
    err.write(bar("steps", args.steps, args.steps, time.monotonic() - start, 0.01, loss, args.fast) + "\n")
    err.flush()
    if args.at_once:
        sys.stdout.write(out.getvalue())
        sys.stderr.write(err.getvalue())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
