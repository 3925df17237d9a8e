"""Resuming a cancelled or crashed run: which run folder, which saved state, and whether to trust it.

sd-scripts (`save_state`) writes accelerate state folders into the run folder: `<name>-000002-state`
per epoch, `<name>-state` at the end, each with a `train_state.json` ({"current_epoch",
"current_step"}) that `--resume` reads. A resumed run continues in the same run folder.

What a workflow names is untrusted: the run folder must be a folder directly in the project's
output folder (no link, no `..`), the state folder one of that run's, named as sd-scripts names
them. A state holds pickles (optimizer, RNG) that loading runs as code, so a workflow may only
resume a state this installation recorded as written by one of its own runs (digests kept in the
user's cache folder, outside any project); the command line, the user's own shell, may resume any.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .. import disk, paths
from ..errors import ValidationError, WorkbenchError
from . import records

LEDGER_FILE = "known-states.json"
COMPLETE_MARK = "random_states_0.pkl"  # accelerate's last file of a saved state
_RUN_SUFFIX_RE = re.compile(r"-(\d{3,})")
_MAX_STATE_JSON = 4096
MAX_RECORD_BYTES = records.MAX_RECORD_BYTES  # run.json keeps every loss of a long run


@dataclass(frozen=True)
class SavedState:
    """One state folder sd-scripts saved, with the epoch and optimizer step it was saved at."""

    path: Path
    epoch: int
    step: int


@dataclass(frozen=True)
class ResumePoint:
    """The run to continue: its folder, its run.json record, and its newest saved state (or None)."""

    run_dir: Path
    record: dict
    state: SavedState | None


# --------------------------------------------------------------------------- the run folder
def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def run_folders(output_root: Path, name: str) -> list[Path]:
    """`<output_root>/<name>-NNN` folders (real folders, no links), oldest first."""
    if not output_root.is_dir():
        return []
    found = []
    for entry in os.scandir(output_root):
        m = _RUN_SUFFIX_RE.fullmatch(entry.name[len(name) :]) if entry.name.startswith(name) else None
        if m and entry.is_dir(follow_symlinks=False):
            found.append((int(m.group(1)), Path(entry.path)))
    return [p for _, p in sorted(found)]


def find_run(value: str, output_root: Path, name: str) -> Path:
    """The run folder `value` names ("latest", a folder name or a path), checked to be a real folder
    directly in `output_root`; a sentence when it is not."""
    if value == "latest":
        runs = run_folders(output_root, name)
        if not runs:
            raise ValidationError(
                f"There is no earlier run of {name} in {output_root} to resume; clear resume to start a new "
                f"run (or set output_name to the name of the run to resume)."
            )
        return runs[-1]
    try:
        given = Path(value).expanduser()
        candidate = given if given.is_absolute() else output_root / given
        root = _real(output_root)
        inside = _real(candidate).parent == root and not candidate.is_symlink() and candidate.is_dir()
    except (RuntimeError, ValueError, OSError):  # ~nouser, a NUL, a name the OS refuses
        inside = False
    if not inside:
        raise ValidationError(
            f"resume {value!r} is not a run folder of this project: give 'latest' or the name of a folder "
            f"in {output_root} (e.g. {name}-001)."
        )
    return root / _real(candidate).name


def read_record(run_dir: Path) -> dict:
    """The run's run.json (a regular file of at most MAX_RECORD_BYTES holding an object); a sentence
    when there is none, or it cannot be read."""
    data, why = None, ""
    try:  # run.json itself may be a link planted in a shared project: never followed
        data = records.read(run_dir)
    except (OSError, WorkbenchError) as exc:
        why = f" ({str(exc).rstrip('.')})"
    if not isinstance(data, dict):
        raise ValidationError(
            f"{run_dir} has no readable run.json{why}, so it was not written by lora-workbench and cannot "
            f"be resumed here; start a new run."
        )
    return data


# --------------------------------------------------------------------------- its states
def _state_name_re(name: str) -> re.Pattern:
    return re.compile(re.escape(name) + r"(?:-(\d{6})|-step(\d{8}))?-state")


def _read_train_state(folder: Path) -> tuple[int, int] | None:
    """(epoch, step) from train_state.json: a small regular file holding two whole numbers."""
    try:  # opened no-follow and non-blocking, then checked: no lstat-then-read-by-name race
        with paths.open_dir(folder, what="state folder", confined=False) as d:
            data = d.read_json("train_state.json", _MAX_STATE_JSON, what="train state")
        epoch, step = data["current_epoch"], data["current_step"]
    except (OSError, WorkbenchError, KeyError, TypeError, IndexError):
        return None
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epoch, step))
    return (epoch, step) if ok else None


def saved_states(run_dir: Path, name: str) -> list[SavedState]:
    """The run's states sd-scripts can resume from, by step (oldest first): real folders directly in
    the run folder, named like sd-scripts' state folders, each with a valid train_state.json and
    complete (accelerate writes the RNG states last: a run stopped while saving leaves none)."""
    pattern = _state_name_re(name)
    out = []
    for entry in os.scandir(run_dir):
        if not pattern.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        if not os.path.isfile(os.path.join(entry.path, COMPLETE_MARK)):
            continue
        read = _read_train_state(Path(entry.path))
        if read is not None:
            out.append(SavedState(Path(entry.path), read[0], read[1]))
    return sorted(out, key=lambda s: (s.step, s.epoch))


def find_point(value: str, output_root: Path, name: str) -> ResumePoint:
    run_dir = find_run(value, output_root, name)
    record = read_record(run_dir)
    recorded = record.get("output_name") or name
    if not isinstance(recorded, str):
        raise ValidationError(
            f"{run_dir / 'run.json'} holds output_name {paths.shown(repr(recorded))}, not a name, so it was "
            f"not written by lora-workbench and cannot be resumed here; start a new run."
        )
    states = saved_states(run_dir, recorded)
    return ResumePoint(run_dir, record, states[-1] if states else None)


# --------------------------------------------------------------------------- states we wrote
def state_digest(folder: Path) -> dict[str, str]:
    """{relative file: sha256} of every file in a state folder; a link anywhere is refused."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for entry in [*dirnames, *filenames]:
            if os.path.islink(os.path.join(dirpath, entry)):
                raise ValidationError(f"The state {folder} holds a link ({entry}); it cannot be resumed.")
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            out[os.path.relpath(path, folder)] = _file_digest(path, folder)
    return out


def _file_digest(path: str, folder: Path) -> str:
    """sha256 of a regular file, opened without following a link and without blocking (a FIFO planted
    in a state is refused, not waited on)."""
    flags = os.O_RDONLY | paths.O_NOFOLLOW | paths.O_NONBLOCK | paths.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ValidationError(
            f"The state {folder} holds {path} that cannot be read ({exc.strerror})."
        ) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValidationError(
                f"The state {folder} holds {path}, not a regular file; it cannot be resumed."
            )
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def written_since(folder: Path, since_ns: int) -> bool:
    """True when every file in the state folder was written at or after `since_ns` (its change time,
    which no one can set by hand): the state is wholly this run's, nothing in it was there before."""
    for dirpath, _dirnames, filenames in os.walk(folder, followlinks=False):
        for fname in filenames:
            try:
                if os.lstat(os.path.join(dirpath, fname)).st_ctime_ns < since_ns:
                    return False
            except OSError:
                return False
    return True


def _ledger_path() -> Path:
    return paths.cache_dir() / LEDGER_FILE


def _read_ledger() -> dict:
    try:
        data = json.loads(_ledger_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_states(
    run_dir: Path,
    name: str,
    since_ns: int,
    skip: set[str] | None = None,
    problems: list[str] | None = None,
) -> list[str]:
    """Record the digests of the state folders this run saved (every file in them written since the
    launch, `since_ns`) as written by this installation, while a run of ours goes (`skip`: the state
    folders recorded already, added to) and after it ends, however it ends; returns the names of all
    the run's state folders. A record that cannot be written (a full disk) never stops a run: the
    sentence goes to `problems`."""
    states = saved_states(run_dir, name)
    ours = [s for s in states if str(s.path) not in (skip or ()) and written_since(s.path, since_ns)]
    if not ours:
        return [s.path.name for s in states]
    ledger = _read_ledger()
    for s in ours:
        try:
            ledger[str(_real(s.path))] = state_digest(s.path)
        except (OSError, ValidationError):
            continue
        if skip is not None:
            skip.add(str(s.path))
    path = _ledger_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(ledger, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if problems is not None:
            problems.append(_unrecorded(path, exc, run_dir))
    return [s.path.name for s in states]


def _unrecorded(path: Path, exc: OSError, run_dir: Path) -> str:
    said = (
        disk.full_sentence(path, exc.strerror or "")
        if disk.is_full(exc)
        else (f"{path} could not be written ({exc.strerror or exc}).")
    )
    return (
        f"{said} The states this run saved are not recorded as this installation's, so a workflow cannot "
        f"resume them; the command line can: lora-workbench train PROJECT --resume {run_dir.name}."
    )


def check_known(state: SavedState) -> None:
    """Refuse a state this installation did not record writing (or that changed since)."""
    known = _read_ledger().get(str(_real(state.path)))
    if not known or known != state_digest(state.path):
        raise ValidationError(
            f"The state {state.path} was not saved by a run of this installation (or changed since), and "
            f"loading a state runs the code its files hold; a workflow can only resume states it saw "
            f"written. If you trust it, resume from the command line: lora-workbench train PROJECT "
            f"--resume {state.path.parent.name}."
        )


def mismatch(record: dict, options: dict) -> str:
    """What differs between the run being resumed and the options given now (for the error sentence)."""
    from .settings import SETTINGS

    spec = record.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    diffs = [
        f"{s.name} {spec[s.name]!r} -> {options[s.name]!r}"
        for s in SETTINGS
        if s.affects_result and s.name in spec and spec[s.name] != options.get(s.name)
    ]
    return ", ".join(diffs) if diffs else "the dataset, the base model or the device changed"
