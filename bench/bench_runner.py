"""Benchmark: the runner's overhead on a real sd-scripts run, against the same run launched by hand.

    KOHYA_SS_PATH=... [KOHYA_PYTHON=...] python bench/bench_runner.py [--rounds 2] [--steps 8]

Alternates (ABBA) a plain `subprocess` launch (output to files, nothing parsed) with `runner.run_process`
(two reader threads, parsing, events, on_update) on the same 8-step, 64x64, CPU LoRA training of the
random-weight SD1.5 that scripts/integration-env.sh builds, and prints the wall-time ratio (target
<= 1.02) and the time from launch to the first `steps: 1/N` refresh. Reads the variables that script
prints (source its env file); skips with a message when KOHYA_SS_PATH is unset.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _integration as integration  # noqa: E402

from lora_workbench.training import runner  # noqa: E402

FIRST_STEP_RE = re.compile(rb"(?<![\w ])steps:\s*\d+%\|[^|]*\|\s*1/\d+")


def setup(work: Path) -> tuple[list[str], Path, Path]:
    kohya = Path(os.environ["KOHYA_SS_PATH"])
    scripts = kohya if (kohya / "train_network.py").is_file() else kohya / "sd-scripts"
    python = integration.kohya_python(kohya)
    ckpt = integration.test_checkpoint()
    tok = integration.tokenizer_cache()
    images = integration.smoke_images()
    missing = [str(p) for p in (ckpt, tok, images) if not p.exists()] + (
        [] if python else ["sd-scripts python"]
    )
    if missing:
        raise SystemExit(
            f"SKIP: missing {', '.join(missing)} (run scripts/integration-env.sh and source its env file)"
        )
    shutil.copytree(images, work / "images")
    toml = work / "dataset.toml"
    toml.write_text(
        '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n[[datasets]]\nresolution = [64, 64]\n'
        f'batch_size = 1\n\n  [[datasets.subsets]]\n  image_dir = "{(work / "images/2_testsubject").as_posix()}"\n'
        '  class_tokens = "testsubject"\n  num_repeats = 2\n',
        encoding="utf-8",
    )
    base = [
        str(python),
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "2",
        "train_network.py",
        "--pretrained_model_name_or_path",
        str(ckpt),
        "--output_name",
        "benchlora",
        "--network_module",
        "networks.lora",
        "--network_dim",
        "4",
        "--network_alpha",
        "4",
        "--save_model_as",
        "safetensors",
        "--mixed_precision",
        "no",
        "--learning_rate",
        "1e-4",
        "--optimizer_type",
        "AdamW",
        "--tokenizer_cache_dir",
        str(tok),
        "--seed",
        "42",
        "--dataset_config",
        str(toml),
    ]
    return base, scripts, work


def by_hand(argv: list[str], cwd: Path, env: dict, out: Path) -> tuple[float, float | None]:
    """Plain Popen with both streams to files; the first step is spotted by polling the stderr file."""
    out.mkdir(parents=True)
    t0 = time.monotonic()
    first = None
    with open(out / "stdout.log", "wb") as so, open(out / "stderr.log", "wb") as se:
        # A session of its own, as the runner gives the trainer: with autogroup scheduling each
        # session has its own CPU share, which on a busy machine would otherwise favour one side.
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=so, stderr=se, stdin=subprocess.DEVNULL, start_new_session=True
        )
        while proc.poll() is None:
            time.sleep(0.1)
            if first is None and FIRST_STEP_RE.search((out / "stderr.log").read_bytes()):
                first = time.monotonic() - t0
        rc = proc.wait()
    wall = time.monotonic() - t0
    if rc != 0:
        raise SystemExit(f"by-hand run failed (rc {rc}); see {out}")
    return wall, first


def through_runner(
    argv: list[str], cwd: Path, env: dict, out: Path, steps: int
) -> tuple[float, float | None]:
    out.mkdir(parents=True)
    t0 = time.monotonic()
    first: list[float] = []

    def on_update(st: runner.TrainStatus) -> None:
        if not first and st.step >= 1:
            first.append(time.monotonic() - t0)

    res = runner.run_process(
        argv,
        runner.RunOptions(
            cwd=str(cwd), env=env, log_path=str(out / "train.log"), total_steps=steps, on_update=on_update
        ),
    )
    wall = time.monotonic() - t0
    if res.status.state != "finished":
        raise SystemExit(f"runner run {res.status.state}: {res.status.message}\n" + "\n".join(res.tail))
    return wall, (first[0] if first else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each kind, alternated (default 2)")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    if not os.environ.get("KOHYA_SS_PATH"):
        print("SKIP: KOHYA_SS_PATH is not set (scripts/integration-env.sh builds sd-scripts and prints it)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        base, scripts, work = setup(Path(tmp))
        # The same environment for both, so only the launching and watching differ.
        env = runner.child_env({**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        hand: list[tuple[float, float | None]] = []
        ours: list[tuple[float, float | None]] = []
        for r in range(args.rounds):
            # ABBA order: neither kind always runs second (warm page cache, other load on the machine).
            for kind in ("hand", "runner") if r % 2 == 0 else ("runner", "hand"):
                out = work / f"{kind}-{r}"
                argv = base + ["--output_dir", str(out), "--max_train_steps", str(args.steps)]
                if kind == "hand":
                    hand.append(by_hand(argv, scripts, env, out))
                    w, f = hand[-1]
                else:
                    ours.append(through_runner(argv, scripts, env, out, args.steps))
                    w, f = ours[-1]
                print(
                    f"round {r + 1} {kind:<6} wall {w:6.2f} s   first step after {f or float('nan'):6.2f} s",
                    flush=True,
                )
    hw = statistics.median(w for w, _ in hand)
    rw = statistics.median(w for w, _ in ours)
    hf = [f for _, f in hand if f is not None]
    rf = [f for _, f in ours if f is not None]
    print(f"\nmedian wall: by hand {hw:.2f} s, runner {rw:.2f} s -> ratio {rw / hw:.3f} (target <= 1.02)")
    print(
        f"total wall:  by hand {sum(w for w, _ in hand):.2f} s, runner {sum(w for w, _ in ours):.2f} s -> "
        f"ratio {sum(w for w, _ in ours) / sum(w for w, _ in hand):.3f}"
    )
    if hf and rf:
        print(
            f"time to first step (median): by hand {statistics.median(hf):.2f} s (file polled every 0.1 s), "
            f"runner {statistics.median(rf):.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
