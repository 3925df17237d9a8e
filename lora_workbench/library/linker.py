"""Links from the shared model library into ComfyUI, A1111 and Forge (the layout is in layout.py).

One library folder holds every model; each UI sees it through links, never copies. `plan_links`
compares what the library holds with what each UI folder holds and lists the changes; `apply_plan`
makes them and returns a `LinkReport`. Only links that point into the library are ours: a real file
or a link pointing elsewhere is never overwritten or deleted (it is reported as a collision).
Pure Python, no ComfyUI import; the node, the CLI and the watcher share it.

A library is shared data, so: a link is ours when where it points - its folder resolved - lies in
the library, never because its text starts with the library's path; a target folder must resolve
inside its UI folder (or, from a workflow, the allowed roots) before anything is written there;
links are made through descriptors of the folders that were checked, never through a symlink; a
library folder that links back into a UI folder is not scanned; a library whose category folders
are missing (an empty mount point) changes nothing. Two passes at once end in the right state:
what the other pass already did counts as done.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import events, paths
from ..errors import PathNotAllowed
from ..modelfiles.safetensors_header import incomplete
from .layout import TRAINED_LORA_FOLDERS, UI_NAMES, Target, is_partial_download, targets_for


@dataclass(slots=True)
class LinkAction:
    kind: str  # "create" | "fix" | "remove"
    path: str  # the link in the UI folder
    source: str  # the library file it should point at ("" for remove)
    folder: str = ""  # the target folder `path` lies in (made through its descriptor)


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
    looks_unmounted: bool = False  # the library folder is there but holds none of its categories
    # target folder -> the real folders it may resolve into (None: anywhere, the CLI)
    folders: dict[str, tuple[str, ...] | None] = field(default_factory=dict)


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
    looks_unmounted: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """False when something needs the user: a collision, an error, a missing or unmounted library."""
        return not (self.collisions or self.errors or self.library_missing or self.looks_unmounted)

    def summary(self) -> str:
        if self.library_missing:
            return f"library missing: {self.library} does not exist; nothing changed"
        if self.looks_unmounted:
            return (
                f"library looks unmounted: {self.library} holds none of its category folders; nothing changed"
            )
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
            "looks_unmounted": self.looks_unmounted,
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


# --------------------------------------------------------------------------- ownership
def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Owner:
    """Decides whether a link is ours from where it points, resolved, never from a prefix of its text.

    A link's target counts by its folder resolved (symlinks and `..` followed) plus its own name, so
    `LIB/../elsewhere/x` is not ours, `ALIAS/loras/x` (the library through a symlinked spelling) is,
    and a library file that is itself a symlink still counts by where it sits in the library.
    """

    def __init__(self, root: str):
        self.abs = os.path.abspath(root)
        self.real = os.path.realpath(self.abs)
        self._dirs: dict[str, str] = {}
        self._exists: dict[str, bool] = {}

    def resolve(self, link_dir: str, dest: str) -> str:
        """Where a link with text `dest` inside `link_dir` points: its folder resolved, its name kept."""
        full = dest if os.path.isabs(dest) else os.path.join(link_dir, dest)
        head, name = os.path.split(full)
        if name in ("", ".", ".."):
            return os.path.realpath(full)
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head)
        return os.path.join(real_head, name)

    def owns(self, link_dir: str, dest: str) -> bool:
        return _is_within(self.resolve(link_dir, dest), self.real)

    def same(self, link_dir: str, dest: str, source: str) -> bool:
        """True when the link text `dest` already points at `source` (however it is spelled)."""
        return dest == _norm_link(source) or self.resolve(link_dir, dest) == self.resolve("", source)

    def gone(self, link_dir: str, dest: str) -> bool:
        """True when the file a link of ours points at no longer exists."""
        target = self.resolve(link_dir, dest)
        ok = self._exists.get(target)
        if ok is None:
            ok = self._exists[target] = os.path.exists(target)
        return not ok


# --------------------------------------------------------------------------- scanning
@dataclass
class _SourceScan:
    """Collects `relative path -> absolute file path` of the model files under a library folder."""

    exts: frozenset[str]
    ignore: frozenset[str]
    avoid: tuple[str, ...] = ()  # real paths of the UI target folders: a folder link into one is skipped
    out: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seen: set = field(default_factory=set)

    def scan(self, folder: str, rel: str = "") -> dict[str, str]:
        try:
            it = os.scandir(folder)
        except OSError:
            return self.out
        splitext, exts, ignore, out = os.path.splitext, self.exts, self.ignore, self.out
        with it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    if entry.is_dir():
                        if self._descend(entry):
                            self.scan(entry.path, rel + name + os.sep)
                        continue
                    if splitext(name)[1].lower() not in exts or is_partial_download(name):
                        continue
                    if entry.path in ignore or not entry.is_file():
                        continue
                except OSError:
                    continue
                out[rel + name] = entry.path
        return out

    def _descend(self, entry: os.DirEntry) -> bool:
        st = entry.stat()
        key = (st.st_dev, st.st_ino)
        if key in self.seen:  # a symlink cycle inside the library
            return False
        self.seen.add(key)
        if entry.is_symlink() and self.avoid:
            real = os.path.realpath(entry.path)
            if any(_is_within(real, a) or _is_within(a, real) for a in self.avoid):
                self.skipped.append(f"{entry.path} links into a UI model folder ({real}); not scanned")
                return False
        return True


def _scan_sources(
    folder: str,
    exts: frozenset[str],
    ignore: frozenset[str],
    out: dict[str, str],
    avoid: tuple[str, ...] = (),
) -> list[str]:
    """Fill `out` with the model files under `folder`; returns the folder links it skipped."""
    scan = _SourceScan(exts, ignore, avoid, out)
    scan.scan(folder)
    return scan.skipped


if os.name == "nt":

    def _readlink(path: str, dir_fd: int | None = None) -> str:
        """Windows returns the substitute name (\\\\?\\C:\\...); compare without it and case-insensitively."""
        s = os.readlink(path)
        return os.path.normcase(s[4:] if s.startswith("\\\\?\\") else s)

    _norm_link = os.path.normcase
else:
    _readlink = os.readlink  # (path, *, dir_fd=None)

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


# --------------------------------------------------------------------------- planning
def _plan_folder(plan: LinkPlan, folder: str, wanted: dict[str, str], owner: _Owner) -> None:
    """Add the actions that make `folder` hold exactly the links in `wanted` (rel -> source)."""
    have: dict[str, tuple[str, str | None]] = {}
    _scan_links(folder, "", have)
    norm = _norm_link
    for rel, source in wanted.items():
        got = have.get(rel)
        if got is not None and got[1] == norm(source):  # our link, spelled as we spell it: the common case
            plan.unchanged += 1
            continue
        _plan_wanted(plan, folder, rel, source, have, owner)
    join = os.path.join
    for rel, (kind, dest) in have.items():
        if kind != "link" or rel in wanted:
            continue
        link_dir = os.path.dirname(join(folder, rel))
        if owner.owns(link_dir, dest) and owner.gone(link_dir, dest):  # ours, its file is gone
            plan.actions.append(LinkAction("remove", join(folder, rel), "", folder))
    # Folders are never removed, even when emptied: ComfyUI's file-list cache raises on a scanned
    # folder that disappears, and a folder may hold the user's own files later.


def _plan_wanted(plan: LinkPlan, folder: str, rel: str, source: str, have: dict, owner: _Owner) -> None:
    got = have.get(rel)
    path = os.path.join(folder, rel)
    if got is None:
        blocked = _blocked_parent(rel, have)  # a parent of rel that is a file or a link blocks it
        if blocked:
            plan.collisions.append((path, f"{os.path.join(folder, blocked)} is in the way (not a folder)"))
        else:
            plan.actions.append(LinkAction("create", path, source, folder))
        return
    kind, dest = got
    if kind == "link":
        if dest == _norm_link(source):  # the common case, decided without a system call
            plan.unchanged += 1
            return
        link_dir = os.path.dirname(path)
        if owner.same(link_dir, dest, source):
            plan.unchanged += 1
        elif owner.owns(link_dir, dest):
            plan.actions.append(LinkAction("fix", path, source, folder))
        else:
            plan.collisions.append((path, f"a link to {dest} is already there (not ours; left alone)"))
    elif kind == "file":
        if _same_file(path, source):  # our hard link (where symlinks were not possible)
            plan.unchanged += 1
        else:
            plan.collisions.append((path, "a real file is already there (left alone)"))
    else:
        plan.collisions.append((path, "a folder is already there (left alone)"))


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


def _allowed_for(ui_dir: str, roots: Sequence[str] | None) -> tuple[str, ...] | None:
    """The real folders a target folder of this UI may resolve into (None: anywhere)."""
    if roots is None:
        return None
    return (os.path.realpath(ui_dir), *roots)


def _check_folder(
    plan: LinkPlan, label: str, folder: str, ui_dir: str, roots, real_lib: str, home: str = "library"
) -> bool:
    """True when `folder` may receive links: not inside the library, not holding the library, and
    resolving inside its UI folder (or the roots); else a skipped-target sentence."""
    real = os.path.realpath(folder)
    if _is_within(real, real_lib):
        plan.skipped_targets.append(
            f"{label}: {folder} is inside the {home} itself (a folder link?); not linked"
        )
        return False
    if _is_within(real_lib, real):
        plan.skipped_targets.append(f"{label}: the {home} lies inside {folder}; not linked")
        return False
    allowed = _allowed_for(ui_dir, roots)
    plan.folders[folder] = allowed
    if allowed is not None and not any(_is_within(real, a) for a in allowed):
        plan.skipped_targets.append(
            f"{label}: {folder} resolves to {real}, outside the UI folder and the allowed roots; not linked"
        )
        return False
    if allowed is None and not _is_within(real, os.path.realpath(ui_dir)):
        plan.messages.append(
            f"note: {label} links go to {real} ({folder} is a link; the command line follows it)"
        )
    return True


def _missing_library(plan: LinkPlan, lib: str) -> LinkPlan:
    plan.library_missing = True
    plan.messages.append(
        f"The library {lib} does not exist (unmounted drive?); nothing was changed. "
        "Create it with `lora-workbench init` or fix the path."
    )
    return plan


def _present_categories(plan: LinkPlan, lib: str, categories: Iterable[str]) -> set[str]:
    """The categories whose library folder exists; the missing ones are left as they are, and a
    library holding none of them looks unmounted (nothing changes)."""
    wanted = sorted(set(categories))
    present = {c for c in wanted if os.path.isdir(os.path.join(lib, c))}
    if wanted and not present:
        plan.looks_unmounted = True
        plan.messages.append(
            f"The library {lib} holds none of its folders ({', '.join(wanted)}): it looks like an "
            "unmounted drive or an empty folder, so no link was touched. Mount it, or run "
            "`lora-workbench init` on it."
        )
    absent = [c for c in wanted if c not in present]
    if absent and present:
        plan.messages.append(
            f"The library has no {', '.join(absent)} folder{'s' if len(absent) > 1 else ''}; "
            "links of those categories were left as they are."
        )
    return present


def plan_links(
    library: str | os.PathLike,
    targets: Iterable[Target],
    categories: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    roots: Sequence[str | os.PathLike] | None = None,
) -> LinkPlan:
    """Compare the library with each target folder and list what a link pass would change.

    `categories` limits the pass to some library categories; `ignore` holds absolute library file
    paths to leave out this time (files the watcher sees still growing). `roots` (a workflow's
    allowed roots) confines target folders: each must resolve inside its UI folder or a root; None
    (the CLI) follows a target folder that is a link wherever it goes, and says so.
    """
    lib = os.path.abspath(os.path.expanduser(str(library)))
    plan = LinkPlan(library=lib)
    if not os.path.isdir(lib):
        return _missing_library(plan, lib)
    cats = set(categories) if categories is not None else None
    targets = [t for t in targets if cats is None or t.category in cats]
    plan.categories = sorted({t.category for t in targets})
    present = _present_categories(plan, lib, plan.categories)
    if plan.looks_unmounted:
        return plan
    real_roots = None if roots is None else tuple(os.path.realpath(r) for r in roots)
    folders, no_folder = _usable_folders(plan, targets, lib, real_roots)
    sources = _Sources(
        lib,
        frozenset(os.path.abspath(p) for p in ignore),
        tuple({os.path.realpath(f) for f in folders.values()}),
    )
    owner = _Owner(lib)
    for t, folder in folders.items():
        if t.category in present:
            _plan_folder(plan, folder, sources.get(t), owner)
    for t in no_folder:  # a missing folder matters only when there is something to link into it
        if t.category in present and sources.get(t):
            shown = " or ".join(t.candidates)
            plan.skipped_targets.append(
                f"{UI_NAMES.get(t.ui, t.ui)} {t.category}: no {shown} folder in {t.ui_dir}"
            )
    plan.messages += sources.skipped
    return plan


class _Sources:
    """The library files per (category, extensions), scanned once per pass."""

    def __init__(self, lib: str, ignore: frozenset[str], avoid: tuple[str, ...]):
        self.lib, self.ignore, self.avoid = lib, ignore, avoid
        self.found: dict[tuple[str, frozenset[str]], dict[str, str]] = {}
        self.skipped: list[str] = []

    def get(self, t: Target) -> dict[str, str]:
        key = (t.category, t.extensions)
        if key not in self.found:
            self.found[key] = {}
            folder = os.path.join(self.lib, t.category)
            skipped = _scan_sources(folder, t.extensions, self.ignore, self.found[key], self.avoid)
            self.skipped += [s for s in skipped if s not in self.skipped]
        return self.found[key]


def _usable_folders(
    plan: LinkPlan, targets: list[Target], lib: str, roots
) -> tuple[dict[Target, str], list[Target]]:
    """Target -> the folder links go to (for the targets that may receive links), and the targets
    whose UI has no such folder."""
    real_lib = os.path.realpath(lib)
    missing_uis: set[str] = set()
    out: dict[Target, str] = {}
    no_folder: list[Target] = []
    for t in targets:
        ui_name = UI_NAMES.get(t.ui, t.ui)
        if not os.path.isdir(t.ui_dir):
            if t.ui not in missing_uis:
                missing_uis.add(t.ui)
                plan.skipped_targets.append(f"{ui_name}: the folder {t.ui_dir} does not exist")
            continue
        folder = _target_folder(t)
        if folder is None:
            no_folder.append(t)
        elif _check_folder(plan, f"{ui_name} {t.category}", folder, str(t.ui_dir), roots, real_lib):
            out[t] = folder
    return out, no_folder


# --------------------------------------------------------------------------- applying
def _make_junction(source: str, path: str) -> None:
    import _winapi  # Windows only

    _winapi.CreateJunction(source, path)


def make_link(
    source: str, path: str, is_dir: bool = False, symlinks_ok: bool = True, dir_fd: int | None = None
) -> str:
    """Link `path` to `source`; returns the kind used: "symlink", else (Windows without the symlink
    privilege, or a filesystem without symlinks) "junction" for folders, "hardlink" for files.
    With `dir_fd`, `path` is a name inside that open folder."""
    at = {"dir_fd": dir_fd} if dir_fd is not None else {}
    first = None
    if symlinks_ok:
        try:
            os.symlink(source, path, target_is_directory=is_dir, **at)
            return "symlink"
        except FileExistsError:
            raise
        except OSError as exc:
            first = exc
    try:
        if is_dir:
            if sys.platform != "win32" or dir_fd is not None:
                raise first or OSError(f"cannot link folder {path}")
            _make_junction(source, path)
            return "junction"
        os.link(source, path, **({"dst_dir_fd": dir_fd} if dir_fd is not None else {}))  # same volume only
        return "hardlink"
    except FileExistsError:
        raise
    except OSError as exc:
        raise OSError(
            f"neither a symlink ({first}) nor a {'junction' if is_dir else 'hard link'} ({exc}) could be made"
        ) from None


class _Folders:
    """The target folders and their sub-folders, opened as descriptors and checked once.

    A target folder's opened real path must lie where the plan allowed (`LinkPlan.folders`); its
    sub-folders are opened and created without following links, so a folder swapped for a symlink
    after the plan is refused instead of written through. A few dozen stay open at a time.
    """

    KEEP_OPEN = 64

    def __init__(self, allowed: dict[str, tuple[str, ...] | None]):
        self.allowed = allowed
        self.open: OrderedDict[str, paths.ConfinedDir] = OrderedDict()

    def parent(self, action: LinkAction) -> paths.ConfinedDir:
        """The open folder `action.path` lies in (created when missing)."""
        parent = os.path.dirname(action.path)
        d = self.open.get(parent)
        if d is not None:
            self.open.move_to_end(parent)
            return d
        if parent == action.folder or not action.folder:
            d = self._open_target(parent)
        else:
            above = self.parent(LinkAction("", parent, "", action.folder))
            d = above.mkdir(os.path.basename(parent))
        self._keep(parent, d)
        return d

    def _open_target(self, folder: str) -> paths.ConfinedDir:
        allowed = self.allowed.get(folder)
        d = paths.open_dir(folder, what="UI model folder", confined=False)
        if allowed is not None and not any(_is_within(str(d.path), a) for a in allowed):
            d.close()
            raise PathNotAllowed(f"{folder} now resolves to {d.path}, outside where it may; not linked")
        return d

    def _keep(self, key: str, d: paths.ConfinedDir) -> None:
        self.open[key] = d
        while len(self.open) > self.KEEP_OPEN:
            self.open.popitem(last=False)[1].close()

    def close(self) -> None:
        for d in self.open.values():
            d.close()
        self.open.clear()


def _link_at(d: paths.ConfinedDir, name: str) -> str | None:
    """The text of the link `name` in `d`, None when there is none (or something else is there)."""
    try:
        if d.fd is not None:
            return _readlink(name, dir_fd=d.fd)
        return _readlink(str(d.path / name))
    except (FileNotFoundError, OSError):
        return None


@dataclass
class _Apply:
    """One apply pass: the report it fills and what it learned (symlinks possible?)."""

    report: LinkReport
    owner: _Owner
    folders: _Folders
    symlinks_ok: bool = True

    def run(self, a: LinkAction) -> None:
        try:
            d = self.folders.parent(a)
        except (PathNotAllowed, FileExistsError, NotADirectoryError) as exc:
            self.report.collisions.append((a.path, f"{exc} (left alone)"))
            return
        except OSError as exc:
            self.report.errors.append((a.path, str(exc)))
            return
        name = os.path.basename(a.path)
        try:
            if a.kind in ("fix", "remove") and not self._unlink_ours(d, name, a):
                return
            if a.kind != "remove":
                self._create(d, name, a)
        except OSError as exc:
            self.report.errors.append((a.path, str(exc)))

    def _unlink_ours(self, d: paths.ConfinedDir, name: str, a: LinkAction) -> bool:
        """Re-check right before touching it: only our own link is removed. False: nothing more to do."""
        dest = _link_at(d, name)
        link_dir = os.path.dirname(a.path)
        if dest is None:
            if d.lstat(name) is None:  # already gone (another pass)
                return a.kind == "fix"
            self.report.collisions.append((a.path, "changed since it was planned (left alone)"))
            return False
        if a.kind == "fix" and self.owner.same(link_dir, dest, a.source):
            self.report.unchanged += 1  # another pass fixed it already
            return False
        if not self.owner.owns(link_dir, dest):
            self.report.collisions.append((a.path, "changed since it was planned (left alone)"))
            return False
        d.unlink(name, missing_ok=True)
        if a.kind == "remove":
            self.report.removed.append(a.path)
        return True

    def _create(self, d: paths.ConfinedDir, name: str, a: LinkAction) -> None:
        target = name if d.fd is not None else str(d.path / name)
        try:
            kind = make_link(a.source, target, symlinks_ok=self.symlinks_ok, dir_fd=d.fd)
        except FileExistsError:
            dest = _link_at(d, name)
            if (dest is not None and self.owner.same(os.path.dirname(a.path), dest, a.source)) or (
                dest is None and _same_file(a.path, a.source)
            ):
                self.report.unchanged += 1  # another pass made it: already there
            else:
                self.report.collisions.append((a.path, "appeared since it was planned (left alone)"))
            return
        if kind != "symlink":
            self.symlinks_ok = False  # don't pay for a failing symlink call per file
        kinds = self.report.link_kinds
        kinds[kind] = kinds.get(kind, 0) + 1
        (self.report.fixed if a.kind == "fix" else self.report.created).append(a.path)


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
        looks_unmounted=plan.looks_unmounted,
        dry_run=dry_run,
    )
    if dry_run or plan.library_missing or plan.looks_unmounted:
        for a in plan.actions:
            {"create": report.created, "fix": report.fixed, "remove": report.removed}[a.kind].append(a.path)
        return report
    folders = _Folders(plan.folders)
    job = _Apply(report, _Owner(plan.library), folders)
    try:
        for a in plan.actions:
            job.run(a)
    finally:
        folders.close()
    return report


# --------------------------------------------------------------------------- the jobs
def link_library(
    library: str | os.PathLike,
    uis: Mapping[str, str | os.PathLike],
    dry_run: bool = False,
    categories: Iterable[str] | None = None,
    trigger: str = "link",
    roots: Sequence[str | os.PathLike] | None = None,
) -> LinkReport:
    """Make every UI folder's links match the library in one pass and publish the report.

    `roots`: the allowed roots of a workflow (the node passes them); None for the CLI."""
    cats = list(categories) if categories is not None else None
    plan = plan_links(library, targets_for(uis, cats), cats, roots=roots)
    report = apply_plan(plan, dry_run=dry_run)
    events.publish(events.LIBRARY, report.to_dict() | {"library": report.library, "trigger": trigger})
    return report


def _trained_sources(project: str, plan: LinkPlan, roots: tuple[str, ...] | None) -> dict[str, str]:
    """`output*/**/*.safetensors` of a project -> link names: the folder's suffix goes after the stem
    (`output-v2/x.safetensors` -> `x-v2.safetensors`); subfolders are kept (`output/a/x` -> `a/x`).
    With `roots` (a workflow), a file that resolves outside them (an output folder linking out of a
    shared project) is left out and named in the plan's messages; so is a file that is not a whole
    safetensors file (cut off while it was written: a full disk, a run stopped while saving)."""
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
            if roots is not None and not any(_is_within(os.path.realpath(src), r) for r in roots):
                plan.messages.append(f"{src} resolves outside the allowed roots; not linked")
                continue
            cut = incomplete(src)
            if cut:
                plan.messages.append(f"{src} is not a whole LoRA file ({cut}); not linked")
                continue
            stem, ext = os.path.splitext(rel)
            wanted[stem + suffix + ext] = src
    return wanted


def link_trained(
    project_dir: str | os.PathLike,
    ui_dirs: Mapping[str, str | os.PathLike],
    dry_run: bool = False,
    roots: Sequence[str | os.PathLike] | None = None,
) -> LinkReport:
    """Link a training project's `output*/` LoRAs into each UI's LoRA folder (see `_trained_sources`).

    Links into the project are ours: they are fixed or, once their file is gone, removed; anything
    else in the LoRA folder is left alone. `roots` confines the LoRA folders as in `plan_links`.
    """
    project = os.path.abspath(os.path.expanduser(str(project_dir)))
    plan = LinkPlan(library=project, categories=["loras"])
    if not os.path.isdir(project):
        plan.library_missing = True
        plan.messages.append(f"The project folder {project} does not exist; nothing was changed.")
    else:
        real_roots = None if roots is None else tuple(os.path.realpath(r) for r in roots)
        wanted = _trained_sources(project, plan, real_roots)
        if not wanted:
            plan.messages.append(f"No output*/ folder of {project} holds a .safetensors file yet.")
        owner = _Owner(project)
        for ui, ui_dir in ui_dirs.items():
            name = UI_NAMES.get(ui, ui)
            folder = os.path.join(str(ui_dir), TRAINED_LORA_FOLDERS[ui])
            if not os.path.isdir(folder):
                plan.skipped_targets.append(f"{name}: no {TRAINED_LORA_FOLDERS[ui]} folder in {ui_dir}")
            elif _check_folder(plan, name, folder, str(ui_dir), real_roots, owner.real, home="project"):
                _plan_folder(plan, folder, wanted, owner)
    report = apply_plan(plan, dry_run=dry_run)
    events.publish(events.LIBRARY, report.to_dict() | {"library": project, "trigger": "link-trained"})
    return report
