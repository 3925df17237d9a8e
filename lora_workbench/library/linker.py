"""Links from the shared model library into ComfyUI, A1111 and Forge (the layout is in layout.py).

One library folder holds every model; each UI sees it through links, never copies. `plan_links`
compares what the library holds with what each UI folder holds and lists the changes; `apply_plan`
makes them and returns a `LinkReport`. Only links that point into the library are ours: a real file
or a link pointing elsewhere is never overwritten or deleted (it is reported as a collision).
Pure Python, no ComfyUI import; the node, the CLI and the watcher share it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .. import events
from .layout import TRAINED_LORA_FOLDERS, UI_NAMES, Target, is_partial_download, targets_for


@dataclass(slots=True)
class LinkAction:
    kind: str  # "create" | "fix" | "remove"
    path: str  # the link in the UI folder
    source: str  # the library file it should point at ("" for remove)


@dataclass
class LinkPlan:
    """What one link pass would change; `apply_plan` carries it out."""

    library: str
    actions: list[LinkAction] = field(default_factory=list)
    collisions: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped_targets: list[str] = field(default_factory=list)  # one sentence each
    messages: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    unchanged: int = 0
    library_missing: bool = False


@dataclass
class LinkReport:
    """The outcome of a link pass, rendered by the node, the CLI and the web panel."""

    library: str
    created: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    collisions: list[tuple[str, str]] = field(default_factory=list)
    skipped_targets: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    link_kinds: dict[str, int] = field(default_factory=dict)  # symlink / hardlink / junction
    messages: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    unchanged: int = 0
    library_missing: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """False when something needs the user: a collision, an error or a missing library."""
        return not (self.collisions or self.errors or self.library_missing)

    def summary(self) -> str:
        if self.library_missing:
            return f"library missing: {self.library} does not exist; nothing changed"
        n_skip = len(self.skipped_targets)
        text = (
            f"created {len(self.created)}, fixed {len(self.fixed)}, removed {len(self.removed)}, "
            f"collisions {len(self.collisions)}, skipped {n_skip} target{'' if n_skip == 1 else 's'}"
        )
        if self.errors:
            text += f", errors {len(self.errors)}"
        return ("dry run: " + text) if self.dry_run else text

    def to_text(self, limit: int = 20) -> str:
        """A readable multi-line report: the summary, then what needs attention."""
        lines = [self.summary(), f"library: {self.library}"]
        if self.link_kinds and set(self.link_kinds) != {"symlink"}:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.link_kinds.items()))
            lines.append(f"link kinds: {kinds} (symlinks were not possible everywhere)")
        lines += self.messages
        lines += [f"skipped: {s}" for s in self.skipped_targets]
        for title, items in (("collision", self.collisions), ("error", self.errors)):
            for path, why in items[:limit]:
                lines.append(f"{title}: {path}: {why}")
            if len(items) > limit:
                lines.append(f"... and {len(items) - limit} more {title}s")
        return "\n".join(lines)

    def to_dict(self, limit: int = 50) -> dict:
        """JSON-ready; long path lists are cut to `limit` entries (the counts stay exact)."""
        return {
            "library": self.library,
            "summary": self.summary(),
            "ok": self.ok,
            "dry_run": self.dry_run,
            "library_missing": self.library_missing,
            "categories": list(self.categories),
            "created": len(self.created),
            "fixed": len(self.fixed),
            "removed": len(self.removed),
            "collisions": len(self.collisions),
            "skipped": len(self.skipped_targets),
            "errors": len(self.errors),
            "unchanged": self.unchanged,
            "link_kinds": dict(self.link_kinds),
            "created_paths": self.created[:limit],
            "fixed_paths": self.fixed[:limit],
            "removed_paths": self.removed[:limit],
            "collision_list": [{"path": p, "why": w} for p, w in self.collisions[:limit]],
            "error_list": [{"path": p, "why": w} for p, w in self.errors[:limit]],
            "skipped_targets": list(self.skipped_targets),
            "messages": list(self.messages),
        }


# --------------------------------------------------------------------------- scanning
def _scan_sources(
    folder: str,
    exts: frozenset[str],
    ignore: frozenset[str],
    out: dict[str, str],
    rel: str = "",
    seen: set | None = None,
) -> None:
    """Collect `relative path -> absolute file path` for the model files under `folder` (recursive)."""
    if seen is None:
        seen = set()
    try:
        it = os.scandir(folder)
    except OSError:
        return
    with it:
        for entry in it:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    st = entry.stat()
                    key = (st.st_dev, st.st_ino)
                    if key in seen:  # a symlink cycle inside the library
                        continue
                    seen.add(key)
                    _scan_sources(entry.path, exts, ignore, out, rel + name + os.sep, seen)
                    continue
                if os.path.splitext(name)[1].lower() not in exts or is_partial_download(name):
                    continue
                if entry.path in ignore or not entry.is_file():
                    continue
            except OSError:
                continue
            out[rel + name] = entry.path


if os.name == "nt":

    def _readlink(path: str) -> str:
        """Windows returns the substitute name (\\\\?\\C:\\...); compare without it and case-insensitively."""
        s = os.readlink(path)
        return os.path.normcase(s[4:] if s.startswith("\\\\?\\") else s)

    _norm_link = os.path.normcase
else:
    _readlink = os.readlink

    def _norm_link(s: str) -> str:
        return s


def _scan_links(folder: str, rel: str, out: dict[str, tuple[str, str | None]]) -> None:
    """Collect `relative path -> (kind, readlink or None)` of what a UI folder holds; kind is
    "link", "file" or "dir". Symlinked folders are not followed (they may point anywhere)."""
    try:
        it = os.scandir(folder)
    except OSError:
        return
    with it:
        for entry in it:
            r = rel + entry.name
            try:
                if entry.is_symlink():
                    out[r] = ("link", _readlink(entry.path))
                elif entry.is_dir(follow_symlinks=False):
                    out[r] = ("dir", None)
                    _scan_links(entry.path, r + os.sep, out)
                else:
                    out[r] = ("file", None)
            except OSError:
                continue


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _owner_prefixes(root: str) -> tuple[str, ...]:
    """The path prefixes that make a link ours: the root as given and its real path."""
    a = os.path.abspath(root)
    r = os.path.realpath(a)
    return tuple({_norm_link(a.rstrip(os.sep) + os.sep), _norm_link(r.rstrip(os.sep) + os.sep)})


def _plan_folder(  # noqa: C901 (cut into steps pending)
    plan: LinkPlan,
    folder: str,
    wanted: dict[str, str],
    owners: tuple[str, ...],
    exists_cache: dict[str, bool],
) -> None:
    """Add the actions that make `folder` hold exactly the links in `wanted` (rel -> source)."""
    have: dict[str, tuple[str, str | None]] = {}
    _scan_links(folder, "", have)
    join = os.path.join
    for rel, source in wanted.items():
        got = have.get(rel)
        path = join(folder, rel)
        if got is None:
            # A parent of rel that is a file or a foreign link blocks it.
            blocked = _blocked_parent(rel, have)
            if blocked:
                plan.collisions.append((path, f"{join(folder, blocked)} is in the way (not a folder)"))
            else:
                plan.actions.append(LinkAction("create", path, source))
            continue
        kind, dest = got
        if kind == "link":
            if dest == _norm_link(source):
                plan.unchanged += 1
            elif dest.startswith(owners):
                plan.actions.append(LinkAction("fix", path, source))
            else:
                plan.collisions.append((path, f"a link to {dest} is already there (not ours; left alone)"))
        elif kind == "file":
            if _same_file(path, source):  # our hard link (where symlinks were not possible)
                plan.unchanged += 1
            else:
                plan.collisions.append((path, "a real file is already there (left alone)"))
        else:
            plan.collisions.append((path, "a folder is already there (left alone)"))
    for rel, (kind, dest) in have.items():
        if kind != "link" or rel in wanted or not dest.startswith(owners):
            continue
        ok = exists_cache.get(dest)
        if ok is None:
            ok = exists_cache[dest] = os.path.exists(dest)
        if not ok:  # ours, and its library file is gone
            plan.actions.append(LinkAction("remove", join(folder, rel), ""))
    # Folders are never removed, even when emptied: ComfyUI's file-list cache raises on a scanned
    # folder that disappears, and a folder may hold the user's own files later.


def _blocked_parent(rel: str, have: dict[str, tuple[str, str | None]]) -> str | None:
    if os.sep not in rel:
        return None
    parts = rel.split(os.sep)[:-1]
    for i in range(1, len(parts) + 1):
        p = os.sep.join(parts[:i])
        got = have.get(p)
        if got is None:
            return None
        if got[0] != "dir":
            return p
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _target_folder(t: Target) -> str | None:
    for c in t.candidates:
        p = os.path.join(t.ui_dir, c)
        if os.path.isdir(p):
            return p
    return None


def plan_links(
    library: str | os.PathLike,
    targets: Iterable[Target],
    categories: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
) -> LinkPlan:
    """Compare the library with each target folder and list what a link pass would change.

    `categories` limits the pass to some library categories; `ignore` holds absolute library file
    paths to leave out this time (files the watcher sees still growing).
    """
    lib = os.path.abspath(os.path.expanduser(str(library)))
    plan = LinkPlan(library=lib)
    if not os.path.isdir(lib):
        plan.library_missing = True
        plan.messages.append(
            f"The library {lib} does not exist (unmounted drive?); nothing was changed. "
            "Create it with `lora-workbench init` or fix the path."
        )
        return plan
    cats = set(categories) if categories is not None else None
    targets = [t for t in targets if cats is None or t.category in cats]
    plan.categories = sorted({t.category for t in targets})
    owners = _owner_prefixes(lib)
    real_lib = os.path.realpath(lib)
    ignore_set = frozenset(os.path.abspath(p) for p in ignore)
    sources: dict[tuple[str, frozenset[str]], dict[str, str]] = {}
    exists_cache: dict[str, bool] = {}
    missing_uis: set[str] = set()
    for t in targets:
        ui_name = UI_NAMES.get(t.ui, t.ui)
        if not os.path.isdir(t.ui_dir):
            if t.ui not in missing_uis:
                missing_uis.add(t.ui)
                plan.skipped_targets.append(f"{ui_name}: the folder {t.ui_dir} does not exist")
            continue
        key = (t.category, t.extensions)
        wanted = sources.get(key)
        if wanted is None:
            wanted = sources[key] = {}
            _scan_sources(os.path.join(lib, t.category), t.extensions, ignore_set, wanted)
        folder = _target_folder(t)
        if folder is None:
            if wanted:  # a missing folder matters only when there is something to link into it
                shown = " or ".join(t.candidates)
                plan.skipped_targets.append(f"{ui_name} {t.category}: no {shown} folder in {t.ui_dir}")
            continue
        if _is_within(os.path.realpath(folder), real_lib):
            plan.skipped_targets.append(
                f"{ui_name} {t.category}: {folder} is inside the library itself (a folder link?); not linked"
            )
            continue
        _plan_folder(plan, folder, wanted, owners, exists_cache)
    return plan


# --------------------------------------------------------------------------- applying
def _make_junction(source: str, path: str) -> None:
    import _winapi  # Windows only

    _winapi.CreateJunction(source, path)


def make_link(source: str, path: str, is_dir: bool = False, symlinks_ok: bool = True) -> str:
    """Link `path` to `source`; returns the kind used: "symlink", else (Windows without the symlink
    privilege, or a filesystem without symlinks) "junction" for folders, "hardlink" for files."""
    if symlinks_ok:
        try:
            os.symlink(source, path, target_is_directory=is_dir)
            return "symlink"
        except OSError as exc:
            first = exc
    else:
        first = None
    try:
        if is_dir:
            if sys.platform != "win32":
                raise first or OSError(f"cannot link folder {path}")
            _make_junction(source, path)
            return "junction"
        os.link(source, path)  # same volume only
        return "hardlink"
    except OSError as exc:
        raise OSError(
            f"neither a symlink ({first}) nor a {'junction' if is_dir else 'hard link'} ({exc}) could be made"
        ) from None


def apply_plan(plan: LinkPlan, dry_run: bool = False) -> LinkReport:
    """Carry out a plan (or, with dry_run, report what it would do and change nothing)."""
    report = LinkReport(
        library=plan.library,
        collisions=list(plan.collisions),
        skipped_targets=list(plan.skipped_targets),
        messages=list(plan.messages),
        categories=list(plan.categories),
        unchanged=plan.unchanged,
        library_missing=plan.library_missing,
        dry_run=dry_run,
    )
    if dry_run or plan.library_missing:
        for a in plan.actions:
            {"create": report.created, "fix": report.fixed, "remove": report.removed}[a.kind].append(a.path)
        return report
    owners = _owner_prefixes(plan.library)
    known_dirs: set[str] = set()
    kinds = report.link_kinds
    symlinks_ok = True
    for a in plan.actions:
        path = a.path
        try:
            if a.kind == "remove" or a.kind == "fix":
                # Re-check right before touching it: only our own link is ever removed.
                if not os.path.islink(path) or not _readlink(path).startswith(owners):
                    report.collisions.append((path, "changed since it was planned (left alone)"))
                    continue
                os.unlink(path)
                if a.kind == "remove":
                    report.removed.append(path)
                    continue
            parent = os.path.dirname(path)
            if parent not in known_dirs:
                os.makedirs(parent, exist_ok=True)
                known_dirs.add(parent)
            kind = make_link(a.source, path, symlinks_ok=symlinks_ok)
            if kind != "symlink":
                symlinks_ok = False  # don't pay for a failing symlink call per file
            kinds[kind] = kinds.get(kind, 0) + 1
            (report.fixed if a.kind == "fix" else report.created).append(path)
        except FileExistsError:
            report.collisions.append((path, "appeared since it was planned (left alone)"))
        except OSError as exc:
            report.errors.append((path, str(exc)))
    return report


# --------------------------------------------------------------------------- the jobs
def link_library(
    library: str | os.PathLike,
    uis: Mapping[str, str | os.PathLike],
    dry_run: bool = False,
    categories: Iterable[str] | None = None,
    trigger: str = "link",
) -> LinkReport:
    """Make every UI folder's links match the library in one pass and publish the report."""
    cats = list(categories) if categories is not None else None
    plan = plan_links(library, targets_for(uis, cats), cats)
    report = apply_plan(plan, dry_run=dry_run)
    events.publish(events.LIBRARY, report.to_dict() | {"library": report.library, "trigger": trigger})
    return report


def _trained_sources(project: str) -> dict[str, str]:
    """`output*/**/*.safetensors` of a project -> link names: the folder's suffix goes after the stem
    (`output-v2/x.safetensors` -> `x-v2.safetensors`); subfolders are kept (`output/a/x` -> `a/x`)."""
    wanted: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(project), key=lambda e: e.name)
    except OSError:
        return wanted
    for entry in entries:
        if not entry.name.startswith("output") or not entry.is_dir():
            continue
        suffix = entry.name[len("output") :]
        files: dict[str, str] = {}
        _scan_sources(entry.path, frozenset({".safetensors"}), frozenset(), files)
        for rel, src in files.items():
            stem, ext = os.path.splitext(rel)
            wanted[stem + suffix + ext] = src
    return wanted


def link_trained(
    project_dir: str | os.PathLike, ui_dirs: Mapping[str, str | os.PathLike], dry_run: bool = False
) -> LinkReport:
    """Link a training project's `output*/` LoRAs into each UI's LoRA folder (see `_trained_sources`).

    Links into the project are ours: they are fixed or, once their file is gone, removed; anything
    else in the LoRA folder is left alone.
    """
    project = os.path.abspath(os.path.expanduser(str(project_dir)))
    plan = LinkPlan(library=project, categories=["loras"])
    if not os.path.isdir(project):
        plan.library_missing = True
        plan.messages.append(f"The project folder {project} does not exist; nothing was changed.")
    else:
        wanted = _trained_sources(project)
        if not wanted:
            plan.messages.append(f"No output*/ folder of {project} holds a .safetensors file yet.")
        owners = _owner_prefixes(project)
        real = os.path.realpath(project)
        for ui, ui_dir in ui_dirs.items():
            name = UI_NAMES.get(ui, ui)
            folder = os.path.join(str(ui_dir), TRAINED_LORA_FOLDERS[ui])
            if not os.path.isdir(folder):
                plan.skipped_targets.append(f"{name}: no {TRAINED_LORA_FOLDERS[ui]} folder in {ui_dir}")
            elif _is_within(os.path.realpath(folder), real):
                plan.skipped_targets.append(f"{name}: {folder} is inside the project; not linked")
            else:
                _plan_folder(plan, folder, wanted, owners, {})
    report = apply_plan(plan, dry_run=dry_run)
    events.publish(events.LIBRARY, report.to_dict() | {"library": project, "trigger": "link-trained"})
    return report
