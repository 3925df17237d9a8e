"""CLI `trainer install|status|check|update|remove|pins`: the sd-scripts the pack installs and owns in
its data folder ($LORA_WORKBENCH_HOME). KOHYA_SS_PATH, when set, still wins over it.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub) -> None:
    p = sub.add_parser(
        "trainer",
        help="install, check, update or remove the sd-scripts the pack manages",
        description="The managed trainer: sd-scripts at the pack's pinned commit with its own venv, in "
        "$LORA_WORKBENCH_HOME/trainers/sd-scripts. KOHYA_SS_PATH (or kohya_ss_path) wins over it.",
    )
    tsub = p.add_subparsers(dest="trainer_command", metavar="ACTION")
    tsub.required = True
    inst = tsub.add_parser("install", help="clone, build and check sd-scripts; a second run changes nothing")
    inst.add_argument("--trainer", choices=["sd-scripts"], default="sd-scripts", help="which trainer")
    inst.add_argument(
        "--source",
        help="a git URL or a local clone (default: $LORA_WORKBENCH_TRAINER_SOURCE, else the pinned GitHub repository)",
    )
    inst.add_argument("--ref", help="the commit (default: the one the pack is tested against)")
    _torch_and_python(inst, default_torch="auto")
    inst.set_defaults(func=run_install)
    st = tsub.add_parser("status", help="what is installed, what is in use and the pinned commit")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=run_status)
    ck = tsub.add_parser("check", help="import torch, accelerate and sd-scripts again; run its --help")
    ck.set_defaults(func=run_check)
    up = tsub.add_parser("update", help="build another commit beside the one in use; switch when it works")
    up.add_argument("--ref", help="the commit (default: the one the pack is tested against)")
    _torch_and_python(up, default_torch=None)
    up.set_defaults(func=run_update)
    rm = tsub.add_parser("remove", help="delete the managed sd-scripts (only what the pack made)")
    rm.set_defaults(func=run_remove)
    pn = tsub.add_parser("pins", help="the pinned source, commit and fallback torch")
    pn.add_argument("--field", choices=["source", "ref", "fallback_torch"], help="print one value")
    pn.set_defaults(func=run_pins)


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
    print(f"sd-scripts: {report.src}\npython:     {report.python}\ntokenizers: {report.tokenizers}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    import sys as _sys

    from ..trainer_env import install, pins
    from ..trainer_env.plan import InstallRequest

    request = InstallRequest(
        torch=_torch(args),
        python=args.python or _sys.executable,
        source=args.source or pins.source(),
        ref=args.ref or pins.REF,
        comfyui=_comfyui(args),
    )
    return _print_report(install.install(request, progress=_printer(args.verbose)))


def run_update(args: argparse.Namespace) -> int:
    from ..trainer_env import install

    report = install.update(args.ref, _torch(args), comfyui=_comfyui(args), progress=_printer(args.verbose))
    return _print_report(report)


def run_check(args: argparse.Namespace) -> int:
    from ..trainer_env import install

    c = install.check()
    print(
        f"ok: torch {c.get('torch')} (CUDA {c.get('cuda') or '-'}, GPU {c.get('gpu') or 'none'}), python {c.get('python')}"
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ..trainer_env import install
    from ..trainer_env.layout import Layout

    removed = install.remove()
    where = Layout.default().trainer_dir
    print(f"removed from {where}: {', '.join(removed)}" if removed else f"nothing to remove in {where}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ..trainer_env import status

    info = status.status()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for line in status.lines(info):
        print(line)
    return 0


def run_pins(args: argparse.Namespace) -> int:
    from ..trainer_env import pins

    info = pins.as_dict()
    print(info[args.field] if args.field else json.dumps(info, indent=2))
    return 0
