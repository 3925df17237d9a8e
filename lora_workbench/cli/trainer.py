"""CLI `trainer install|status|check|update|remove|pins [--trainer sd-scripts|musubi-tuner]`: the trainers
the pack installs and owns in its data folder ($LORA_WORKBENCH_HOME/trainers/<trainer>). A trainer's own
path variable (KOHYA_SS_PATH, MUSUBI_TUNER_PATH) or settings key, when set, still wins over it.
"""

from __future__ import annotations

import argparse
import json
import sys

TRAINERS = ("sd-scripts", "musubi-tuner")  # the backends' InstallSpec ids (a test keeps them equal)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "trainer",
        help="install, check, update or remove a trainer the pack manages (sd-scripts, musubi-tuner)",
        description="A managed trainer: sd-scripts or musubi-tuner at the pack's pinned commit with its own "
        "venv, in $LORA_WORKBENCH_HOME/trainers/<trainer>. The trainer's path variable or settings key "
        "(KOHYA_SS_PATH / kohya_ss_path, MUSUBI_TUNER_PATH / musubi_tuner_path) wins over it.",
    )
    tsub = p.add_subparsers(dest="trainer_command", metavar="ACTION")
    tsub.required = True
    inst = tsub.add_parser("install", help="clone, build and check a trainer; a second run changes nothing")
    inst.add_argument(
        "--source",
        help="a git URL or a local clone (default: the trainer's mirror variable, "
        "$LORA_WORKBENCH_TRAINER_SOURCE or $LORA_WORKBENCH_MUSUBI_SOURCE, else its pinned GitHub repository)",
    )
    inst.add_argument("--ref", help="the commit (default: the one the pack is tested against)")
    _torch_and_python(inst, default_torch="auto")
    inst.set_defaults(func=run_install)
    st = tsub.add_parser("status", help="what is installed, what is in use and the pinned commit")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=run_status)
    ck = tsub.add_parser("check", help="import torch, accelerate and the trainer again; run its --help")
    ck.set_defaults(func=run_check)
    up = tsub.add_parser("update", help="build another commit beside the one in use; switch when it works")
    up.add_argument("--ref", help="the commit (default: the one the pack is tested against)")
    _torch_and_python(up, default_torch=None)
    up.set_defaults(func=run_update)
    rm = tsub.add_parser("remove", help="delete the managed trainer (only what the pack made)")
    rm.set_defaults(func=run_remove)
    pn = tsub.add_parser("pins", help="the pinned source, commit and fallback torch")
    pn.add_argument("--field", choices=["source", "ref", "fallback_torch"], help="print one value")
    pn.set_defaults(func=run_pins)
    for action in (inst, st, ck, up, rm, pn):
        action.add_argument(
            "--trainer", choices=TRAINERS, default=TRAINERS[0], help="which trainer (default: %(default)s)"
        )


def _torch_and_python(p: argparse.ArgumentParser, default_torch: str | None) -> None:
    p.add_argument(
        "--torch",
        default=default_torch,
        metavar="auto|SPEC",
        help="auto: the torch ComfyUI runs on; or pins like 'torch==2.4.1+cu124 torchvision==0.19.1+cu124'",
    )
    if default_torch is not None:
        p.add_argument("--python", help="the interpreter the venv is made from (default: this one)")
    p.add_argument("--comfyui", help="ComfyUI's folder, for its tokenizer files (default: COMFYUI_PATH)")
    p.add_argument(
        "--comfy-python",
        help="ComfyUI's interpreter, whose torch `auto` matches (default: COMFYUI_PYTHON, else this one)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print every line of git and pip")


def _comfyui(args):
    import os
    from pathlib import Path

    from .. import paths

    if args.comfyui:
        return Path(args.comfyui).expanduser()
    return paths.comfyui_path() or (
        Path(os.environ["COMFYUI_PATH"]) if os.environ.get("COMFYUI_PATH") else None
    )


def _torch(args):
    import os

    from ..trainer_env import torch_pick

    if args.torch is None:
        return None
    return torch_pick.pick(args.torch, args.comfy_python or os.environ.get("COMFYUI_PYTHON") or None)


def _printer(verbose: bool):
    state = {"step": ""}

    def show(p) -> None:
        if p.step != state["step"]:
            state["step"] = p.step
            print(f"[{p.index}/{p.total} +{p.elapsed:.0f}s] {p.title}", file=sys.stderr, flush=True)
        if verbose and p.line:
            print(f"    {p.line}", file=sys.stderr, flush=True)

    return show


def _print_report(report) -> int:
    if not report.changed:
        print(f"up to date: {report.build} ({report.elapsed:.1f}s)")
    else:
        print(f"installed {report.build} ({', '.join(report.steps_run)}; {report.elapsed:.0f}s)")
    c = report.checked
    if c:
        gpu = c.get("gpu") or ("MPS" if c.get("mps") else "no GPU")
        print(
            f"torch {c.get('torch')} (CUDA {c.get('cuda') or '-'}, {gpu}), accelerate {c.get('accelerate')}"
        )
    print(f"checkout:   {report.src}\npython:     {report.python}")
    if report.tokenizers:
        print(f"tokenizers: {report.tokenizers}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    import sys as _sys

    from ..trainer_env import install
    from ..trainer_env.plan import InstallRequest

    request = InstallRequest(
        torch=_torch(args),
        python=args.python or _sys.executable,
        source=args.source or "",  # "": the trainer's mirror variable, else its GitHub repository
        ref=args.ref or "",  # "": the trainer's pinned commit
        comfyui=_comfyui(args),
        trainer=args.trainer,
    )
    return _print_report(install.install(request, progress=_printer(args.verbose)))


def run_update(args: argparse.Namespace) -> int:
    from ..trainer_env import install
    from ..trainer_env.layout import Layout

    layout = Layout.default(args.trainer)
    report = install.update(
        args.ref, _torch(args), comfyui=_comfyui(args), layout=layout, progress=_printer(args.verbose)
    )
    return _print_report(report)


def run_check(args: argparse.Namespace) -> int:
    from ..trainer_env import install
    from ..trainer_env.layout import Layout

    c = install.check(Layout.default(args.trainer))
    print(
        f"ok: torch {c.get('torch')} (CUDA {c.get('cuda') or '-'}, GPU {c.get('gpu') or 'none'}), python {c.get('python')}"
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ..trainer_env import install
    from ..trainer_env.layout import Layout

    where = Layout.default(args.trainer).trainer_dir
    removed = install.remove(Layout.default(args.trainer))
    print(f"removed from {where}: {', '.join(removed)}" if removed else f"nothing to remove in {where}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..trainer_env import status
    from ..trainer_env.layout import Layout

    info = status.status(Layout.default(args.trainer))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for line in status.lines(info):
        print(line)
    return 0


def run_pins(args: argparse.Namespace) -> int:
    from ..trainer_env import pins

    info = pins.as_dict(args.trainer)
    print(info[args.field] if args.field else json.dumps(info, indent=2))
    return 0
