"""Benchmark: what the whole `lora-workbench train` process adds to the sd-scripts command it runs.

    . .integration/env    # the variables scripts/integration-env.sh prints
    flock /tmp/lw-integration.lock python bench/bench_train_overhead.py [--rounds 3] [--epochs 1]

A warm-up `lora-workbench train` (not timed) writes a run folder; its command.txt is the very same
command a user would run by hand. Then rounds alternate (ABBA) the whole CLI process, timed from
start to exit (interpreter start-up, imports, dataset and base-model checks, the device probe,
run files, the trainer, loss curve, run.json), with that command run by hand (same working folder
and environment, output to files, in a session of its own like the CLI's trainer). Prints every
wall time, best and median of both, and their ratio (target <= 1.02), and the part of each CLI run
spent outside the trainer (its wall time minus the trainer's, from the run's run.json): the busy
machine moves whole runs by seconds, that part hardly. The pack's bytecode is
compiled first, as `pip install` does. Skips with a message when KOHYA_SS_PATH is unset.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
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

TARGET = 1.02


def cli_argv() -> list[str]:
    """The installed console script beside this interpreter, else the same entry point through -c."""
    script = Path(sys.executable).with_name("lora-workbench")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lora_workbench.cli import main; sys.exit(main())"]


def bench_env(work: Path, kohya: Path, python: Path) -> dict:
    return {
        **os.environ,
        "KOHYA_SS_PATH": str(kohya),
        "KOHYA_PYTHON": str(python),
        "LORA_WORKBENCH_SETTINGS": str(work / "no-settings.json"),
        "LORA_WORKBENCH_CACHE_DIR": str(work / "cache"),  # the device probe remembers its answer here
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def make_project(work: Path, env: dict) -> Path:
    """The small dataset as a project, with the dataset.toml `dataset apply` writes."""
    project = work / "benchproj"
    shutil.copytree(integration.smoke_images(), project / "images")
    subprocess.run(
        [*cli_argv(), "dataset", "apply", str(project), "--width", "64", "--height", "64"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return project


def through_cli(argv: list[str], env: dict, log: Path, project: Path) -> tuple[float, float]:
    """(wall time of the whole process, the part of it outside the trainer)."""
    t0 = time.monotonic()
    with open(log, "wb") as out:
        rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - t0
    if rc != 0:
        raise SystemExit(f"lora-workbench train failed (rc {rc}); see {log}")
    run_dir = sorted((project / "output").iterdir())[-1]  # <name>-NNN: the newest sorts last
    trainer = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"]["elapsed_s"]
    return wall, wall - trainer  # elapsed_s: from starting the trainer until its output was read


def read_command(run_dir: Path) -> tuple[list[str], str]:
    """(argv, working folder) from a run's command.txt."""
    lines = (run_dir / "command.txt").read_text(encoding="utf-8").splitlines()
    cwd = lines[0].removeprefix("# working directory: ").strip()
    return shlex.split(lines[-1]), cwd


def by_hand(argv: list[str], cwd: str, env: dict, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(out / "stdout.log", "wb") as so, open(out / "stderr.log", "wb") as se:
        # In a session of its own, as the CLI starts the trainer: Linux's autogroup scheduling gives
        # each session its own CPU share, which on a busy machine would otherwise favour one side.
        rc = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se, start_new_session=True
        ).returncode
    wall = time.monotonic() - t0
    if rc != 0:
        raise SystemExit(f"the hand-run command failed (rc {rc}); see {out}")
    return wall


def summary(name: str, walls: list[float]) -> str:
    return f"{name}: best {min(walls):.2f} s, median {statistics.median(walls):.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each kind, alternated (default 3)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of 4 steps each (default 1)")
    args = ap.parse_args()
    if not os.environ.get("KOHYA_SS_PATH"):
        print("SKIP: KOHYA_SS_PATH is not set (scripts/integration-env.sh builds sd-scripts and prints it)")
        return 0
    kohya = Path(os.environ["KOHYA_SS_PATH"])
    python = integration.kohya_python(kohya)
    ckpt, tok = integration.test_checkpoint(), integration.tokenizer_cache()
    missing = [str(p) for p in (ckpt, tok, integration.smoke_images()) if not p.exists()]
    if missing or python is None:
        print(
            f"SKIP: missing {', '.join(missing) or 'the sd-scripts python'} (run scripts/integration-env.sh)"
        )
        return 0
    compileall.compile_dir(integration.REPO / "lora_workbench", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-train-overhead-") as tmp:
        work = Path(tmp)
        env = bench_env(work, kohya, python)
        project = make_project(work, env)
        train = [
            *cli_argv(), "train", str(project), "--base", str(ckpt), "--tokenizer-cache-dir", str(tok),
            "--epochs", str(args.epochs), "--width", "64", "--height", "64",
            "--network-dim", "4", "--network-alpha", "4", "--no-cache",
        ]  # fmt: skip
        warm, _ = through_cli(train, env, work / "warm-up.log", project)
        hand_argv, cwd = read_command(sorted((project / "output").iterdir())[-1])
        hand_env = runner.child_env(env)  # what the CLI gives sd-scripts, so only the CLI differs
        print(f"warm-up through the CLI: {warm:.2f} s (device probe asked and remembered)")
        print(f"by hand: {shlex.join(hand_argv)[:160]} ...  (in {cwd})", flush=True)
        cli: list[float] = []
        outside: list[float] = []
        hand: list[float] = []
        for r in range(args.rounds):
            for kind in ("cli", "hand") if r % 2 == 0 else ("hand", "cli"):
                if kind == "cli":
                    wall, extra = through_cli(train, env, work / f"cli-{r}.log", project)
                    cli.append(wall)
                    outside.append(extra)
                    note = f"   ({extra:.2f} s of it outside the trainer)"
                else:
                    wall = by_hand(hand_argv, cwd, hand_env, work / f"hand-{r}")
                    hand.append(wall)
                    note = ""
                print(f"round {r + 1} {kind:<5} {wall:7.2f} s{note}", flush=True)
    print(f"\n{summary('lora-workbench train (whole process)', cli)}")
    print(summary("the same command by hand", hand))
    ratio_median = statistics.median(cli) / statistics.median(hand)
    print(
        f"ratio: best {min(cli) / min(hand):.3f}, median {ratio_median:.3f} (target <= {TARGET}); "
        f"median difference {statistics.median(cli) - statistics.median(hand):+.2f} s"
    )
    # The part outside the trainer is measured inside each CLI run, so the machine's noise, which
    # moves both sides by seconds, hardly touches it.
    share = statistics.median(outside) / statistics.median(hand)
    print(
        f"outside the trainer (start-up, checks, run files, loss curve, exit): best {min(outside):.2f} s, "
        f"median {statistics.median(outside):.2f} s = {share:.1%} of the hand-run median"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
