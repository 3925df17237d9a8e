"""Ask sd-scripts itself whether our commands mean what we meant: no weights, no training.

For each case (an argv as train.py would run it, the config TOML it names, the dataset TOML copy),
a probe running in the sd-scripts Python (cwd = the sd-scripts checkout) does what the trainer does
before it loads a model:

1. `setup_parser()` of the training script, `parse_args` on our script argv, then
   `train_util.read_config_from_file` on our config TOML (sections flattened, as sd-scripts does);
2. reports, for every key we wrote, whether the parser knows it and the value it ended up with;
3. runs the trainer's own checks: `verify_training_args`, `prepare_dataset_args`, the dataset
   blueprint from our dataset TOML (`ConfigSanitizer` + `BlueprintGenerator`, which refuse unknown
   or mistyped keys) and the dataset group, and the trainer class's `assert_extra_args`; and reports
   the value every subset ended up with for the dataset keys we meant (`dataset_expect`), after
   sd-scripts' own fallbacks (subset -> dataset -> [general] -> arguments);
4. parses the accelerate options before the script with accelerate's own `launch_command_parser`.

`check(...)` returns one `Result` per case and `problems(case, result)` turns it into sentences.
Reusable per training script: the families work adds flux_train_network.py, sd3_train_network.py, ...
(the trainer class is found by name, `*NetworkTrainer` defined in the script's module).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARK = "ARGCHECK-RESULT:"

PROBE = r"""
import argparse, importlib, io, json, os, sys, traceback
sys.path.insert(0, os.getcwd())
cases = json.loads(sys.stdin.read())
script = cases[0]["script"]
module = importlib.import_module(os.path.splitext(script)[0])
from library import train_util, config_util
from accelerate.commands.launch import launch_command_parser

def jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return repr(v)

def step(out, name, fn):
    try:
        fn()
    except BaseException as exc:  # SystemExit from argparse too
        out["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
        return False
    return True

def trainer_class():
    for value in vars(module).values():
        if isinstance(value, type) and value.__name__.endswith("NetworkTrainer") and value.__module__ == module.__name__:
            return value
    raise LookupError("no *NetworkTrainer class in " + module.__name__)

results = []
for case in cases:
    out = {"name": case["name"], "errors": {}, "values": {}, "known": [], "accelerate": {}, "dataset_values": {}}
    parser = module.setup_parser()
    out["known"] = sorted({a.dest for a in parser._actions})
    state = {}
    def parse():
        sys.argv = [script, *case["script_args"]]
        args = parser.parse_args(case["script_args"])
        train_util.verify_command_line_training_args(args)
        state["args"] = train_util.read_config_from_file(args, parser)
    if step(out, "parse", parse):
        args = state["args"]
        out["values"] = {k: jsonable(getattr(args, k, "<missing>")) for k in case["keys"]}
        step(out, "verify_training_args", lambda: train_util.verify_training_args(args))
        step(out, "prepare_dataset_args", lambda: train_util.prepare_dataset_args(args, True))
        def dataset():
            gen = config_util.BlueprintGenerator(config_util.ConfigSanitizer(True, True, args.masked_loss, True))
            blueprint = gen.generate(config_util.load_user_config(args.dataset_config), args)
            out["dataset_values"] = {
                key: [jsonable(getattr(sub.params, key, "<missing>")) for ds in blueprint.dataset_group.datasets for sub in ds.subsets]
                for key in case["dataset_keys"]
            }
            state["groups"] = config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)
        if step(out, "dataset", dataset):
            step(out, "assert_extra_args", lambda: trainer_class()().assert_extra_args(args, *state["groups"]))
    if case["launch_args"] is not None:
        def launch():
            ns = launch_command_parser().parse_args([*case["launch_args"], script, *case["script_args"]])
            out["accelerate"] = {k: jsonable(v) for k, v in vars(ns).items()}
        step(out, "accelerate", launch)
    results.append(out)
print(MARK + json.dumps(results))
""".replace("MARK", repr(MARK))


@dataclass
class Case:
    """One command to check, and what we meant by it."""

    name: str
    argv: list[str]  # the whole command, as Command.argv
    config: dict  # the config TOML we wrote, by section
    expect: dict = field(default_factory=dict)  # {sd-scripts dest: value we meant} beyond the config
    dataset_expect: dict = field(default_factory=dict)  # {subset param: value every subset must have}

    def split(self) -> tuple[str, list[str], list[str] | None]:
        """(script file name, the script's argv, accelerate's options or None for plain python)."""
        i = next(i for i, a in enumerate(self.argv) if a.endswith(".py"))
        launch = None
        if "accelerate.commands.launch" in self.argv[:i]:
            launch = self.argv[self.argv.index("accelerate.commands.launch") + 1 : i]
        return Path(self.argv[i]).name, self.argv[i + 1 :], launch

    def keys(self) -> dict:
        """The flattened config, as sd-scripts reads it, plus the extra expectations."""
        flat = {}
        for key, value in self.config.items():
            flat.update(value if isinstance(value, dict) else {key: value})
        return {**flat, **self.expect}


@dataclass
class Result:
    name: str
    known: set[str]
    values: dict
    errors: dict
    accelerate: dict
    dataset_values: dict = field(default_factory=dict)


def check(
    python: str | os.PathLike, scripts_dir: str | os.PathLike, cases: list[Case], timeout: float = 600
) -> list[Result]:
    """A Result per case, in order (one probe process per training script)."""
    by_script: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        by_script.setdefault(case.split()[0], []).append(i)
    results: list[Result | None] = [None] * len(cases)
    for indexes in by_script.values():
        for i, result in zip(
            indexes, _probe(python, scripts_dir, [cases[i] for i in indexes], timeout), strict=True
        ):
            results[i] = result
    return results  # type: ignore[return-value]


def _probe(python, scripts_dir, cases: list[Case], timeout: float) -> list[Result]:
    payload = []
    for case in cases:
        script, script_args, launch = case.split()
        payload.append(
            {
                "name": case.name,
                "script": script,
                "script_args": script_args,
                "launch_args": launch,
                "keys": list(case.keys()),
                "dataset_keys": list(case.dataset_expect),
            }
        )
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    proc = subprocess.run(
        [str(python), "-c", PROBE],
        input=json.dumps(payload),
        cwd=str(scripts_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise AssertionError(f"the probe printed no result (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return [
        Result(r["name"], set(r["known"]), r["values"], r["errors"], r["accelerate"], r["dataset_values"])
        for r in json.loads(line[len(MARK) :])
    ]


def _same(ours, parsed) -> bool:
    if isinstance(ours, float) or isinstance(parsed, float):
        return (
            isinstance(parsed, (int, float))
            and not isinstance(parsed, bool)
            and abs(float(ours) - parsed) < 1e-12
        )
    return ours == parsed


def problems(case: Case, result: Result) -> list[str]:
    """What sd-scripts (or accelerate) did not take as we meant it, as sentences."""
    out = [f"{case.name}: {step} failed: {err}" for step, err in result.errors.items()]
    for key, ours in case.keys().items():
        if key not in result.known:
            out.append(f"{case.name}: sd-scripts has no option {key!r} (we wrote {ours!r})")
        elif key in result.values and not _same(ours, result.values[key]):
            out.append(f"{case.name}: {key} parsed as {result.values[key]!r}, we meant {ours!r}")
    for key, ours in case.dataset_expect.items():
        got = result.dataset_values.get(key)
        if not got or any(not _same(ours, v) for v in got):
            out.append(f"{case.name}: dataset key {key} is {got!r} in sd-scripts' subsets, we meant {ours!r}")
    _, _, launch = case.split()
    for flag, value in _accelerate_pairs(launch or []):
        parsed = result.accelerate.get(flag)
        if value is True and parsed is not True or value is not True and str(parsed) != value:
            out.append(f"{case.name}: accelerate --{flag} parsed as {parsed!r}, we meant {value!r}")
    return out


def _accelerate_pairs(args: list[str]) -> list[tuple[str, object]]:
    """(--option, value or True for a switch) pairs of an accelerate argv."""
    pairs, i = [], 0
    while i < len(args):
        flag = args[i][2:]
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            pairs.append((flag, args[i + 1]))
            i += 2
        else:
            pairs.append((flag, True))
            i += 1
    return pairs
