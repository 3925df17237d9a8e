"""The seed's way to apply repeats: rename subset folders to `N_Subject`, crash-safe.

Plan first (refused when a target exists), write the plan to a journal in the project, rename one
folder at a time, then remove the journal. After a crash `recover()` reads the journal and either
finishes the renames or rolls them back; each step's state is read from the disk (source or target
present), so the journal never needs updating mid-way.

A journal is data inside a project, and projects are shared: it may only rename subset folders of
that very project, inside its `images/` or `regularization/`. It lists them relative to the project
(`images/1_Anna`), so recovery still works after the project folder moved. Every entry is checked
before anything moves; one entry that is anything else refuses the whole journal and leaves it
where it is. Folders are opened as descriptors and renamed relative to them, never through a link.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..errors import PathNotAllowed, ValidationError, WorkbenchError

JOURNAL_NAME = ".lora-workbench-rename.json"
JOURNAL_VERSION = 2  # 1: absolute paths (read for old journals); 2: paths relative to the project
SUBSET_PARENTS = ("images", "regularization")
MAX_JOURNAL_BYTES = 1 << 20

Step = tuple[str, str, str]  # (parent folder, source name, target name), e.g. ("images", "1_A", "3_A")


def journal_path(project_dir: str | os.PathLike) -> Path:
    return Path(project_dir) / JOURNAL_NAME


@dataclass
class RenamePlan:
    project_dir: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (source, target) absolute paths
    steps: list[Step] = field(default_factory=list)  # the same moves relative to the project

    def to_dict(self) -> dict:
        """The journal: every move as `parent/name` relative to the project."""
        return {"moves": [[f"{p}/{s}", f"{p}/{t}"] for p, s, t in self.steps]}


@dataclass
class RecoverReport:
    mode: str  # "finish" | "rollback"
    found: bool = False  # a journal was there
    steps: list[tuple[str, str]] = field(default_factory=list)  # renames done by recover()

    def to_text(self) -> str:
        verb = "finished" if self.mode == "finish" else "rolled back"
        lines = [f"Interrupted rename {verb}: {len(self.steps)} folder(s) renamed."]
        lines += [f"  {Path(s).name} -> {Path(t).name}" for s, t in self.steps]
        return "\n".join(lines)


# --------------------------------------------------------------------------- what a move may be
def _subset_entry(rel: str) -> tuple[str, str] | None:
    """(parent, name) when `rel` is `images/NAME` or `regularization/NAME`, else None."""
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] not in SUBSET_PARENTS:
        return None
    name = parts[1]
    if name in ("", ".", "..") or "\x00" in name or os.sep in name or (os.altsep and os.altsep in name):
        return None
    return parts[0], name


def _relative(project: Path, path: str) -> str:
    """`path` relative to the project with '/' separators ('..' parts when it is outside)."""
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(project))
    return rel.replace(os.sep, "/")


def _step(project: Path, src: str, dst: str) -> Step | None:
    """The move as (parent, source name, target name), or None when it is not a subset rename."""
    a, b = _subset_entry(_relative(project, src)), _subset_entry(_relative(project, dst))
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[0], a[1], b[1]


def plan_renames(project_dir: str | os.PathLike, moves: list[tuple[str, str]]) -> RenamePlan:
    """Check every (source, target) pair; raises ValidationError (nothing changed) on a clash."""
    project = Path(project_dir)
    plan = RenamePlan(str(project_dir))
    targets: set[str] = set()
    problems: list[str] = []
    for src, dst in moves:
        if src == dst:
            continue
        step = _step(project, src, dst)
        if step is None:
            problems.append(f"{src} -> {dst} is not a rename inside images/ or regularization/ of {project}")
            continue
        if not os.path.isdir(src):
            problems.append(f"{src} is not a folder any more")
        if os.path.lexists(dst):
            problems.append(
                f"{Path(src).name} cannot become {Path(dst).name}: {dst} already exists "
                f"(merge or rename it first)"
            )
        if dst in targets:
            problems.append(f"two subsets would both become {Path(dst).name}")
        targets.add(dst)
        plan.moves.append((src, dst))
        plan.steps.append(step)
    if problems:
        raise ValidationError(
            "Renaming the subset folders is refused; nothing was renamed:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return plan


# --------------------------------------------------------------------------- doing it
def _rename_entry(folder: paths.ConfinedDir, src: str, dst: str) -> None:
    """One rename inside an open subset parent folder (the tests' crash point)."""
    folder.rename(src, dst)


class _Parents:
    """The project's images/ and regularization/ opened once each, refusing a symlinked one."""

    def __init__(self, project: paths.ConfinedDir, journal: Path | None = None):
        self.project = project
        self.journal = journal  # recovery: a refusal names the journal it came from
        self.open: dict[str, paths.ConfinedDir] = {}

    def __getitem__(self, parent: str) -> paths.ConfinedDir:
        if parent not in self.open:
            try:
                self.open[parent] = self.project.subdir(parent)
            except (PathNotAllowed, FileNotFoundError) as exc:
                why = str(exc) if isinstance(exc, PathNotAllowed) else f"{parent}/ does not exist"
                if self.journal is not None:
                    raise _refuse(self.journal, why) from None
                raise WorkbenchError(f"{why}; no subset folder was renamed.") from None
        return self.open[parent]

    def close(self) -> None:
        for d in self.open.values():
            d.close()


def apply_plan(plan: RenamePlan) -> list[tuple[str, str]]:
    """Rename per the plan under a journal; returns the renames done."""
    if not plan.moves:
        return []
    with paths.open_dir(plan.project_dir, what="project folder", confined=False) as project:
        jpath = project.path / JOURNAL_NAME
        if project.lstat(JOURNAL_NAME) is not None:
            raise WorkbenchError(
                f"A previous folder rename in {plan.project_dir} was interrupted ({jpath}); run "
                f"`lora-workbench dataset recover {plan.project_dir}` first."
            )
        parents = _Parents(project)
        try:
            for p, _s, _t in plan.steps:
                parents[p]  # a symlinked images/ is refused before the journal is written
            text = json.dumps({"version": JOURNAL_VERSION, **plan.to_dict()}, indent=1, ensure_ascii=False)
            project.write_atomic(JOURNAL_NAME, text)
            done: list[tuple[str, str]] = []
            for (src, dst), (p, s, t) in zip(plan.moves, plan.steps, strict=True):
                try:
                    _rename_entry(parents[p], s, t)
                except OSError as exc:
                    raise WorkbenchError(
                        f"Renaming {src} to {dst} failed ({exc}); {len(done)} of {len(plan.moves)} folders "
                        f"were renamed. The plan is kept in {jpath}: run `lora-workbench dataset recover "
                        f"{plan.project_dir}` to finish (or with --rollback to undo), or apply again."
                    ) from exc
                done.append((src, dst))
            project.unlink(JOURNAL_NAME)
        finally:
            parents.close()
    return done


# --------------------------------------------------------------------------- recovery
def _refuse(jpath: Path, why: str) -> WorkbenchError:
    return WorkbenchError(
        f"The rename journal {jpath} is refused: {why}. Nothing was renamed and the journal was left "
        "as it is; if you did not interrupt a folder rename in this project, check the subset folder "
        "names by hand and delete the journal."
    )


def _journal_steps(data, jpath: Path) -> list[Step]:
    """The journal's moves as steps, every entry checked; _refuse() on anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("moves"), list):
        raise _refuse(jpath, 'it is not a JSON object with a "moves" list')
    version = data.get("version", 1)
    if type(version) is not int or version not in (1, JOURNAL_VERSION):
        raise _refuse(jpath, f"its version {paths.shown(str(version))} is not one this pack writes")
    old_root = data.get("project_dir") if version == 1 else None
    steps: list[Step] = []
    for entry in data["moves"]:
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
            raise _refuse(jpath, f"the entry {paths.shown(json.dumps(entry)[:80])} is not a pair of names")
        src, dst = entry
        if version == 1:  # absolute paths, relative to where the project was when it was written
            if not isinstance(old_root, str) or not all(os.path.isabs(x) for x in entry):
                raise _refuse(jpath, f"the entry {paths.shown(src)} is not inside the project it names")
            src, dst = _relative(Path(old_root), src), _relative(Path(old_root), dst)
        a, b = _subset_entry(src), _subset_entry(dst)
        if a is None or b is None or a[0] != b[0]:
            raise _refuse(
                jpath,
                f"it would move {paths.shown(entry[0])} to {paths.shown(entry[1])}, which is not a rename "
                "of a subset folder inside this project's images/ or regularization/",
            )
        steps.append((a[0], a[1], b[1]))
    if len({(p, t) for p, _s, t in steps}) != len(steps):
        raise _refuse(jpath, "two entries have the same target")
    return steps


def _read_steps(project: paths.ConfinedDir) -> list[Step] | None:
    jpath = project.path / JOURNAL_NAME
    try:
        raw = project.read_bytes(JOURNAL_NAME, limit=MAX_JOURNAL_BYTES)
    except FileNotFoundError:
        return None
    except PathNotAllowed as exc:
        raise _refuse(jpath, str(exc)) from None
    except ValidationError:
        raise _refuse(jpath, "it is larger than 1 MiB") from None
    except OSError as exc:
        raise _refuse(jpath, f"it cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep
        raise _refuse(jpath, "it is not a JSON file this pack wrote") from None
    return _journal_steps(data, jpath)


def read_journal(project_dir: str | os.PathLike) -> RenamePlan | None:
    """The journal of a project as a plan (absolute paths under the project as it is now), or None."""
    with paths.open_dir(project_dir, what="project folder", confined=False) as project:
        steps = _read_steps(project)
        root = project.path
    if steps is None:
        return None
    moves = [(str(root / p / s), str(root / p / t)) for p, s, t in steps]
    return RenamePlan(str(root), moves, steps)


def _check_states(parents: _Parents, pairs: list[Step], jpath: Path, mode: str) -> list[Step]:
    """The steps still to do; WorkbenchError before anything moves when a step's state is unclear."""
    todo = []
    for p, s, t in pairs:
        folder = parents[p]
        has_src, has_dst = folder.lstat(s) is not None, folder.lstat(t) is not None
        src, dst = folder.path / s, folder.path / t
        if has_src and has_dst:
            raise WorkbenchError(
                f"Both {src} and {dst} exist, so the interrupted rename cannot be {mode}ed "
                f"safely; merge them by hand, then delete {jpath}."
            )
        if not has_src and not has_dst:
            raise WorkbenchError(
                f"Neither {src} nor {dst} exists; check the subset folders by hand, then delete {jpath}."
            )
        if has_src:
            todo.append((p, s, t))
    return todo


def recover(project_dir: str | os.PathLike, mode: str = "finish") -> RecoverReport:
    """Finish ("finish") or undo ("rollback") an interrupted rename; no journal -> nothing to do."""
    if mode not in ("finish", "rollback"):
        raise ValueError("mode must be 'finish' or 'rollback'")
    report = RecoverReport(mode)
    with paths.open_dir(project_dir, what="project folder", confined=False) as project:
        steps = _read_steps(project)
        if steps is None:
            return report
        report.found = True
        jpath = project.path / JOURNAL_NAME
        pairs = steps if mode == "finish" else [(p, t, s) for p, s, t in reversed(steps)]
        parents = _Parents(project, jpath)
        try:
            for p, s, t in _check_states(parents, pairs, jpath, mode):
                _rename_entry(parents[p], s, t)
                report.steps.append((str(parents[p].path / s), str(parents[p].path / t)))
        finally:
            parents.close()
        project.unlink(JOURNAL_NAME)
    return report
