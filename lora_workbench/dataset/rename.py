"""The seed's way to apply repeats: rename subset folders to `N_Subject`, crash-safe.

Plan first (refused when a target exists), write the plan to a journal in the project, rename one
folder at a time, then remove the journal. After a crash `recover()` reads the journal and either
finishes the renames or rolls them back; each step's state is read from the disk (source or target
present), so the journal never needs updating mid-way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ValidationError, WorkbenchError

JOURNAL_NAME = ".lora-workbench-rename.json"


def journal_path(project_dir: str | os.PathLike) -> Path:
    return Path(project_dir) / JOURNAL_NAME


@dataclass
class RenamePlan:
    project_dir: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (source, target) absolute paths

    def to_dict(self) -> dict:
        return {"project_dir": self.project_dir, "moves": [list(m) for m in self.moves]}


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


def plan_renames(project_dir: str | os.PathLike, moves: list[tuple[str, str]]) -> RenamePlan:
    """Check every (source, target) pair; raises ValidationError (nothing changed) on a clash."""
    plan = RenamePlan(str(project_dir))
    targets: set[str] = set()
    problems: list[str] = []
    for src, dst in moves:
        if src == dst:
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
    if problems:
        raise ValidationError(
            "Renaming the subset folders is refused; nothing was renamed:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return plan


def _write_journal(path: Path, plan: RenamePlan) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"version": 1, **plan.to_dict()}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def apply_plan(plan: RenamePlan) -> list[tuple[str, str]]:
    """Rename per the plan under a journal; returns the renames done."""
    if not plan.moves:
        return []
    jpath = journal_path(plan.project_dir)
    if jpath.exists():
        raise WorkbenchError(
            f"A previous folder rename in {plan.project_dir} was interrupted ({jpath}); run "
            f"`lora-workbench dataset recover {plan.project_dir}` first."
        )
    _write_journal(jpath, plan)
    done: list[tuple[str, str]] = []
    for src, dst in plan.moves:
        try:
            os.rename(src, dst)
        except OSError as exc:
            raise WorkbenchError(
                f"Renaming {src} to {dst} failed ({exc}); {len(done)} of {len(plan.moves)} folders were renamed. "
                f"The plan is kept in {jpath}: run `lora-workbench dataset recover {plan.project_dir}` to finish "
                f"(or with --rollback to undo), or apply again."
            ) from exc
        done.append((src, dst))
    jpath.unlink()
    return done


def read_journal(project_dir: str | os.PathLike) -> RenamePlan | None:
    jpath = journal_path(project_dir)
    try:
        data = json.loads(jpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkbenchError(
            f"The rename journal {jpath} cannot be read ({exc}); check the subset folder names "
            f"by hand, then delete the journal."
        ) from None
    return RenamePlan(str(data.get("project_dir", project_dir)), [(str(s), str(t)) for s, t in data["moves"]])


def recover(project_dir: str | os.PathLike, mode: str = "finish") -> RecoverReport:
    """Finish ("finish") or undo ("rollback") an interrupted rename; no journal -> nothing to do."""
    if mode not in ("finish", "rollback"):
        raise ValueError("mode must be 'finish' or 'rollback'")
    report = RecoverReport(mode)
    plan = read_journal(project_dir)
    if plan is None:
        return report
    report.found = True
    pairs = plan.moves if mode == "finish" else [(t, s) for s, t in reversed(plan.moves)]
    for src, dst in pairs:
        has_src, has_dst = os.path.lexists(src), os.path.lexists(dst)
        if has_src and has_dst:
            raise WorkbenchError(
                f"Both {src} and {dst} exist, so the interrupted rename cannot be {mode}ed "
                f"safely; merge them by hand, then delete {journal_path(project_dir)}."
            )
        if has_src:
            os.rename(src, dst)
            report.steps.append((src, dst))
        elif not has_dst:
            raise WorkbenchError(
                f"Neither {src} nor {dst} exists; check the subset folders by hand, then delete "
                f"{journal_path(project_dir)}."
            )
    journal_path(project_dir).unlink()
    return report
