"""Running an install plan (any trainer: what differs is its InstallSpec's data): each step writes its stamp after it succeeded, so an install killed at
any point and run again converges; the build is checked before current.json names it, so a failed
install or update leaves the trainer in use as it was.

`install()` is what the CLI and (later) the settings dialog's route call: it takes a progress
callback (step, pip's current line, time so far), a cancel flag (threading.Event) and holds a lock,
so a second install while one runs is refused with a sentence, in this process or another.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import disk, filelock
from ..errors import WorkbenchError
from . import pins, procs, tokenizers
from .layout import MARKER, BuildDirs, Layout, read_current, read_json_file, write_json_atomic
from .plan import InstallPlan, InstallRequest, Step, pip_argv, plan_install, requirements_text
from .procs import InstallCancelled, Runner
from .torch_pick import TorchChoice

__all__ = ["InstallCancelled", "InstallBusy", "TrainerInstallError", "install", "update", "remove"]

CHECK_CODE = """
import importlib, json, sys
import torch, accelerate
importlib.import_module(sys.argv[1])  # the trainer's own package: sd-scripts' library, musubi_tuner
out = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
       "accelerate": accelerate.__version__, "gpu": "", "mps": False, "tokenizers": []}
if torch.cuda.is_available():
    out["gpu"] = torch.cuda.get_device_name(0)
mps = getattr(torch.backends, "mps", None)
out["mps"] = bool(mps is not None and mps.is_available())
if sys.argv[2:]:
    from transformers import CLIPTokenizer
    for folder in sys.argv[2:]:
        tok = CLIPTokenizer.from_pretrained(folder)
        ids = tok("a photo").input_ids
        if tok.model_max_length != 77 or ids[0] != 49406:
            raise SystemExit(f"the tokenizer in {folder} does not behave like CLIP's")
        out["tokenizers"].append(folder)
print("LORA-WORKBENCH-CHECK " + json.dumps(out))
"""
CHECK_PREFIX = "LORA-WORKBENCH-CHECK "
_THREAD_LOCK = threading.Lock()


class TrainerInstallError(WorkbenchError):
    """An install step failed; the message says which, quotes the tool's own line and what to do."""


class InstallBusy(WorkbenchError):
    """Another install, update or remove of the managed trainer is running."""


@dataclass
class Progress:
    step: str  # "clone", "venv", "pip", "tokenizers", "check", "switch"
    title: str
    index: int  # 1-based
    total: int
    line: str  # the tool's current output line ("" at a step's start)
    elapsed: float  # seconds since the install began


@dataclass
class InstallReport:
    build: str
    changed: bool  # False: nothing was out of date (a second install)
    steps_run: list[str]
    checked: dict
    src: str
    python: str
    tokenizers: str
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the lock
@contextmanager
def install_lock(layout: Layout) -> Iterator[None]:
    """Held for a whole install/update/remove; InstallBusy when another holds it."""
    if not _THREAD_LOCK.acquire(blocking=False):
        raise InstallBusy(_busy_sentence(layout))
    fd = None
    try:
        layout.trainer_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        if not filelock.try_lock(fd):
            raise InstallBusy(_busy_sentence(layout))
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the OS lock
        _THREAD_LOCK.release()


def _busy_sentence(layout: Layout) -> str:
    return (
        f"Another install, update or remove of {layout.trainer} is running (lock {layout.lock}); "
        "wait for it to finish, then try again."
    )


def busy(layout: Layout | None = None) -> bool:
    """Is an install running now (here or in another process)?"""
    layout = layout or Layout.default()
    try:
        with install_lock(layout):
            return False
    except InstallBusy:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- install
def install(
    request: InstallRequest,
    *,
    layout: Layout | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    runner: Runner = procs.run,
) -> InstallReport:
    """Build (or finish building) the requested trainer, check it, and make it the one in use."""
    layout = layout or Layout.default(request.trainer)
    if layout.trainer != request.trainer:
        raise ValueError(f"a {request.trainer} install into {layout.trainer_dir}")
    with install_lock(layout):
        return _Install(request, layout, progress, cancel, runner).run()


class _Install:
    def __init__(self, request, layout, progress, cancel, runner):
        self.request: InstallRequest = request
        self.spec = request.spec
        self.layout: Layout = layout
        self.progress = progress
        self.cancel = cancel
        self.runner: Runner = runner
        self.t0 = time.monotonic()
        self.tok_source = tokenizers.comfy_source(request.comfyui)
        self.plan: InstallPlan = plan_install(request, layout, tokenizers.inputs(self.tok_source))
        self.build: BuildDirs = self.plan.build
        self.notes: list[str] = []
        self.step: Step = self.plan.steps[0]

    def run(self) -> InstallReport:
        if self._up_to_date():
            return self._report(changed=False, ran=[])
        self.build.work.mkdir(parents=True, exist_ok=True)
        (self.build.root / MARKER).touch()
        ran: list[str] = []
        for step in self.plan.steps:
            self.step = step
            if not ran and step.name != "switch" and self._stamped(step):
                continue  # once a step ran, every later one runs: its result may rest on the old one
            self._say("")
            getattr(self, f"_{step.name}")()
            self._stamp(step)
            ran.append(step.name)
        return self._report(changed=True, ran=ran)

    # ----------------------------------------------------------------- stamps and reporting
    def _stamp_path(self, step: Step) -> Path:
        return self.build.work / f"{step.name}.stamp"

    def _stamped(self, step: Step) -> bool:
        try:
            return self._stamp_path(step).read_text(encoding="utf-8").strip() == step.inputs
        except (OSError, UnicodeDecodeError):
            return False

    def _stamp(self, step: Step) -> None:
        disk.write_atomic(self._stamp_path(step), step.inputs + "\n")

    def _up_to_date(self) -> bool:
        try:
            current = read_current(self.layout)
        except ValueError:
            return False
        return (
            current is not None
            and current.build.name == self.build.name
            and all(self._stamped(s) for s in self.plan.steps[:-1])
            and self.build.python.is_file()
            and (self.build.src / self.spec.marker).is_file()
        )

    def _say(self, line: str) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise InstallCancelled("The install was cancelled; run it again to continue where it stopped.")
        if self.progress is not None:
            index = self.plan.steps.index(self.step) + 1
            total = len(self.plan.steps)
            elapsed = time.monotonic() - self.t0
            self.progress(Progress(self.step.name, self.step.title, index, total, line, elapsed))

    def _run(self, argv: list[str], log: str, cwd: Path | None = None) -> procs.RunResult:
        return self.runner(argv, cwd=cwd, log=self.build.work / log, on_line=self._say, cancel=self.cancel)

    def _report(self, changed: bool, ran: list[str]) -> InstallReport:
        ready = _read_ready(self.build)
        return InstallReport(
            build=self.build.name,
            changed=changed,
            steps_run=ran,
            checked=ready.get("checked", {}),
            src=str(self.build.src),
            python=str(self.build.python),
            tokenizers=str(self.layout.tokenizers) if self.spec.clip_tokenizers else "",
            notes=self.notes + ([self.request.torch.note] if self.request.torch.note else []),
            elapsed=time.monotonic() - self.t0,
        )

    def _unchanged(self) -> str:
        try:
            current = read_current(self.layout)
        except ValueError:
            current = None
        if current is None:
            return "No trainer was recorded, so none is in use yet"
        return f"The trainer in use ({current.build.name}) is unchanged"

    # ----------------------------------------------------------------- the steps
    def _clone(self) -> None:
        from . import gitsrc

        part = self.build.root / "src.part"
        remove_tree(part, self.layout)
        remove_tree(self.build.src, self.layout)
        commit = gitsrc.checkout(self.request.source, self.request.ref, part, self._run, self._say)
        for needed in (self.spec.marker, self.spec.requirements or "pyproject.toml"):
            if not (part / needed).is_file():
                raise TrainerInstallError(
                    f"{self.request.source} at {commit[:12]} has no {needed}; give --source a clone of "
                    f"{self.spec.repo}."
                )
        os.rename(part, self.build.src)
        (self.build.work / "commit.txt").write_text(commit + "\n", encoding="utf-8")

    def _venv(self) -> None:
        python = self.request.python
        if not (Path(python).is_file() or shutil.which(python)):
            raise TrainerInstallError(
                f"The Python {python!r} does not exist; pass --python with a Python 3.10 or 3.11 interpreter."
            )
        remove_tree(self.build.venv, self.layout)
        result = self._run([python, "-m", "venv", str(self.build.venv)], "venv.log")
        if not result.ok or not self.build.python.is_file():
            raise TrainerInstallError(
                f"{python} could not make a venv in {self.build.venv}: {_last_line(result)}. Pass --python "
                "with a Python that has the venv module (Debian/Ubuntu: apt install python3-venv)."
            )

    def _pip(self) -> None:
        started = self.build.work / "pip.started"
        if started.exists():  # a pip was killed or failed here: its half-written packages go with the venv
            self._say("a previous pip stopped half-way; making the venv again")
            self._venv()
        started.touch()
        self._pip_install()
        started.unlink()

    def _pip_install(self) -> None:
        if self.spec.requirements:  # else pip installs the checkout's own package: nothing to write
            original = (self.build.src / self.spec.requirements).read_text(encoding="utf-8", errors="replace")
            text = requirements_text(original, self.build.src, self.spec.left_out)
            self.plan.requirements.write_text(text, encoding="utf-8")
        self.plan.constraints.write_text("".join(f"{p}\n" for p in self.request.torch.pins), encoding="utf-8")
        log = self.build.work / "pip.log"
        log.unlink(missing_ok=True)
        result = self._run(pip_argv(self.plan), "pip.log")
        if not result.ok:
            raise TrainerInstallError(
                f'pip could not install {self.spec.trainer}\'s requirements: "{pip_error_line(result.tail)}". '
                f"{self._unchanged()}; pip's full log is {log}."
            )

    def _tokenizers(self) -> None:
        if self.tok_source is None:
            self.notes.append(
                f"ComfyUI's tokenizer files were not found (pass --comfyui or set COMFYUI_PATH), so "
                f"{self.layout.tokenizers} stays empty and sd-scripts downloads its tokenizers."
            )
            return
        made = tokenizers.fill(self.tok_source, self.layout.tokenizers)
        (self.layout.tokenizers / MARKER).touch()
        self._say(f"made {', '.join(made)}" if made else "already there")

    def _check(self) -> None:
        checked = run_checks(self.build, self.layout, self._run, self.spec)
        commit = (self.build.work / "commit.txt").read_text(encoding="utf-8").strip()
        ready = {
            "build": self.build.name,
            "trainer": self.request.trainer,
            "source": self.request.source,
            "ref": self.request.ref,
            "commit": commit,
            "python": self.request.python,
            "torch": self.request.torch.to_dict(),
            "checked": checked,
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json_atomic(self.build.ready, ready)

    def _switch(self) -> None:
        try:
            before = read_current(self.layout)
        except ValueError:
            before = None
        record = dict(_read_ready(self.build))
        if before is None:
            record["previous"] = None
        elif before.build.name == self.build.name:  # recorded again: the one before stays the one before
            record["previous"] = before.record.get("previous")
        else:
            record["previous"] = before.build.name
        write_json_atomic(self.layout.current, record)
        prune(self.layout, keep={self.build.name, record["previous"]})


def _read_ready(build: BuildDirs) -> dict:
    try:
        return read_json_file(build.ready)
    except (OSError, ValueError):
        return {}


def _last_line(result: procs.RunResult) -> str:
    lines = [ln.strip() for ln in result.tail if ln.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def pip_error_line(tail: list[str]) -> str:
    """pip's own `ERROR:` line (the first, which names the requirement), else its last line."""
    errors = [ln.strip() for ln in tail if ln.strip().startswith("ERROR:")]
    if errors:
        return errors[0][:300]
    lines = [ln.strip() for ln in tail if ln.strip()]
    return lines[-1][:300] if lines else "pip failed without a message"


def run_checks(build: BuildDirs, layout: Layout, run: Callable[..., procs.RunResult], spec=None) -> dict:
    """Import torch, accelerate and the trainer's package (sd-scripts' library, musubi_tuner), load the
    tokenizers it takes, run its check script (train_network.py, qwen_image_train_network.py) --help."""
    spec = spec or pins.spec(layout.trainer)
    folders = [str(p) for p in tokenizers.present(layout.tokenizers)] if spec.clip_tokenizers else []
    result = run([str(build.python), "-c", CHECK_CODE, spec.package, *folders], "check.log", build.src)
    found = [ln for ln in result.tail if ln.startswith(CHECK_PREFIX)]
    if not result.ok or not found:
        raise TrainerInstallError(
            f"The {spec.trainer} build in {build.root} does not work: {_error_line(result)}. "
            "Nothing was switched; the full output is in its build/check.log."
        )
    import json

    checked = json.loads(found[-1][len(CHECK_PREFIX) :])
    script = spec.check_script or spec.marker
    helped = run([str(build.python), str(build.src / script), "--help"], "check.log", build.src)
    if not helped.ok or not helped.tail:  # its help is longer than the tail: the exit status decides
        raise TrainerInstallError(
            f"{spec.trainer}'s {Path(script).name} --help fails in {build.root}: {_error_line(helped)}. "
            "Nothing was switched; the full output is in its build/check.log."
        )
    return checked


def _error_line(result: procs.RunResult) -> str:
    from ..training.runner import error_summary

    return error_summary(result.tail) or _last_line(result)


# --------------------------------------------------------------------------- removing what we made
def remove_tree(path: Path, layout: Layout) -> None:
    """Delete a file, link or folder the pack made inside its trainer folder; a link is removed, never
    followed, and nothing whose real parent lies outside the trainer folder is touched."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    parent = Path(os.path.realpath(path.parent))
    home = Path(os.path.realpath(layout.trainer_dir))
    if parent != home and home not in parent.parents:
        raise TrainerInstallError(f"{path} lies outside {layout.trainer_dir}; the pack leaves it alone.")
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # fd-based: links inside are unlinked, never followed
    else:
        os.unlink(path)


def prune(layout: Layout, keep: set) -> list[str]:
    """Delete the builds other than `keep` (the one in use and the one before it): only folders that
    carry the pack's marker; a link or a folder of someone else's is left alone."""
    removed = []
    for entry in os.scandir(layout.trainer_dir):
        if entry.name in keep or not entry.is_dir(follow_symlinks=False):
            continue
        if (Path(entry.path) / MARKER).is_file() and entry.name != "tokenizers":
            remove_tree(Path(entry.path), layout)
            removed.append(entry.name)
    return removed


def remove(layout: Layout | None = None) -> list[str]:
    """Delete the managed trainer: current.json, every build and the tokenizers the pack made."""
    layout = layout or Layout.default()
    top = layout.trainer_dir
    if top.is_symlink():
        raise TrainerInstallError(
            f"{top} is a link; the pack removes only folders it made. Remove it by hand."
        )
    if not top.is_dir():
        return []
    with install_lock(layout):
        removed = []
        if layout.current.exists() or layout.current.is_symlink():
            remove_tree(layout.current, layout)
            removed.append(layout.current.name)
        removed += prune(layout, keep=set())
        tok = layout.tokenizers
        if tok.is_dir() and not tok.is_symlink() and (tok / MARKER).is_file():
            remove_tree(tok, layout)
            removed.append(tok.name)
    return removed


# --------------------------------------------------------------------------- update and check
def update(
    ref: str | None = None,
    torch: TorchChoice | None = None,
    *,
    comfyui: Path | None = None,
    layout: Layout | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    runner: Runner = procs.run,
) -> InstallReport:
    """Build the recorded trainer at `ref` (default: the pack's pinned commit) beside the one in use and
    switch to it once its checks pass."""
    layout = layout or Layout.default()
    current = _current_or_error(layout)
    record, spec = current.record, pins.spec(layout.trainer)
    if torch is None:
        t = record.get("torch") or {}
        torch = TorchChoice(
            tuple(t.get("pins") or pins.FALLBACK_TORCH), t.get("index_url"), "the trainer in use"
        )
    request = InstallRequest(
        torch=torch,
        python=str(record.get("python") or ""),
        source=str(record.get("source") or spec.source()),
        ref=ref or spec.ref,
        comfyui=comfyui,
        trainer=layout.trainer,
    )
    return install(request, layout=layout, progress=progress, cancel=cancel, runner=runner)


def check(layout: Layout | None = None, runner: Runner = procs.run) -> dict:
    """Run the build checks on the trainer in use again; TrainerInstallError when one fails."""
    layout = layout or Layout.default()
    current = _current_or_error(layout)

    def run(argv, log, cwd=None):
        return runner(argv, cwd=cwd, log=None)

    return run_checks(current.build, layout, run, pins.spec(layout.trainer))


def _current_or_error(layout: Layout):
    try:
        current = read_current(layout)
    except ValueError as exc:
        raise TrainerInstallError(f"{exc}; run `{install_command(layout.trainer)}` again.") from None
    if current is None:
        raise TrainerInstallError(
            f"No managed {layout.trainer} in {layout.trainer_dir}; run `{install_command(layout.trainer)}` first."
        )
    return current


def install_command(trainer: str) -> str:
    """The shell command that installs a trainer (the default one needs no --trainer)."""
    return "lora-workbench trainer install" + ("" if trainer == pins.TRAINER else f" --trainer {trainer}")
