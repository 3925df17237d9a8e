"""The tagger never touches the project: its images are staged in a private folder, captions come back.

sd-scripts' tagger opens `<image stem><caption_extension>` beside each image with a plain `open()`,
which follows a link: pointed at a shared project, a caption planted as a link to any file would be
written (or, with --append_tags, read into a caption). So `stage()` opens each image of the project's
subsets through the confined folder API (no link followed out of the roots, regular files only) and
hard-links that very descriptor (or copies it) into a fresh 0700 folder of our own, one numbered
folder per subset; the script runs there. `write_back()` then reads the captions it wrote and puts
each into the subset folder with the confined atomic write (temp file, then rename), the trigger
word first, once. A caption name that is a link or no plain file is left alone and reported.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset import captions
from ..dataset.confined import Entry, Folder, Guard
from ..dataset.scan import SubsetScan, scan_project
from ..errors import WorkbenchError
from .wd14 import TaggerSpec

MAX_CAPTION_BYTES = captions.MAX_CAPTION_BYTES
_PROC_FD = "/proc/self/fd"


@dataclass
class StagedSubset:
    """One subset folder of the project and the images of it the tagger captions."""

    folder: Path  # the subset folder as opened (a link's checked target)
    label: str  # e.g. images/3_cat
    stage: str  # its folder under the staging root
    images: list[str] = field(default_factory=list)


@dataclass
class Staging:
    """The staged images and what was left out, with why."""

    root: Path
    subsets: list[StagedSubset] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "images/3_cat/a.png" -> why not captioned
    kept: int = 0  # images whose caption was kept (existing_captions = keep)

    @property
    def image_count(self) -> int:
        return sum(len(s.images) for s in self.subsets)


@dataclass
class WriteReport:
    """What writing the captions back did, image by image."""

    written: list[str] = field(default_factory=list)  # captions created or changed
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # every caption as it now reads


def caption_name(image: str, spec: TaggerSpec) -> str:
    return os.path.splitext(image)[0] + spec.caption_extension


# --------------------------------------------------------------------------- staging
def stage(spec: TaggerSpec, guard: Guard, root: Path) -> Staging:
    """Stage the images of the project's subsets under `root` (an empty folder of ours)."""
    scan = scan_project(spec.project_dir, caption_extension=spec.caption_extension, guard=guard)
    staging = Staging(root)
    for path, why in scan.refused:
        staging.skipped[path] = why
    for sub in scan.subsets:
        if sub.is_reg and not spec.regularization:
            continue
        label = f"{'regularization' if sub.is_reg else 'images'}/{sub.dirname}"
        if sub.error:
            staging.skipped[label] = sub.error
            continue
        for name, why in {**sub.refused, **sub.not_files, **sub.corrupt}.items():
            staging.skipped[f"{label}/{name}"] = why
        staged = StagedSubset(Path(sub.image_dir), label, f"{len(staging.subsets):03d}")
        _stage_subset(spec, guard, sub, staged, staging)
        if staged.images:
            staging.subsets.append(staged)
    return staging


def _stage_subset(spec: TaggerSpec, guard: Guard, sub: SubsetScan, staged: StagedSubset, staging: Staging):
    target = staging.root / staged.stage
    target.mkdir(mode=0o700)
    with guard.open_dir(staged.folder, "subset folder") as folder:
        files = {e.name: e for e in folder.entries()}
        for image in sub.images:
            if image in sub.corrupt or image in sub.refused:
                continue
            where = f"{staged.label}/{image}"
            why = _stage_image(spec, folder, files, image, sub, target)
            if why == "kept":
                staging.kept += 1
            elif why:
                staging.skipped[where] = why
            else:
                staged.images.append(image)


def _stage_image(
    spec: TaggerSpec, folder: Folder, files: dict[str, Entry], image: str, sub: SubsetScan, target: Path
) -> str:
    """ "" when staged, "kept" when its caption stays, else why the image is not captioned."""
    cap = caption_name(image, spec)
    why = _caption_slot_problem(folder, cap)
    if why:
        return why
    if spec.existing_captions == "keep" and image not in sub.missing_captions:
        return "kept"
    entry = files.get(image)
    if entry is None or entry.kind != "file":
        return "it changed while the project was read"
    try:
        _place(folder, entry, target / image)
        if spec.existing_captions == "append" and folder.exists(cap):
            text = folder.read_own_text(cap, MAX_CAPTION_BYTES)
            (target / cap).write_text(text or "", encoding="utf-8")
    except (OSError, WorkbenchError) as exc:
        return f"it cannot be read ({getattr(exc, 'strerror', None) or exc})"
    return ""


def _caption_slot_problem(folder: Folder, cap: str) -> str:
    """Why the caption name may not be written: a link, a folder, a FIFO ... ("" when it may)."""
    st = folder.lstat(cap)
    if st is None or stat.S_ISREG(st.st_mode):
        return ""
    kind = "a link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else "not a file"
    return f"its caption {cap} is {kind}; it is left alone (remove it to caption this image)"


def _place(folder: Folder, entry: Entry, dst: Path) -> None:
    """The image as opened (no link out of the roots, a regular file) at `dst`: a hard link of that
    descriptor where the system allows, else a copy of it."""
    fd = folder.open_fd(entry)
    try:
        if not _link_fd(fd, dst):
            with open(dst, "xb") as out:
                src = os.fdopen(os.dup(fd), "rb")
                with src:
                    shutil.copyfileobj(src, out, 1 << 20)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.lstat(dst).st_mode):  # our own folder: what is there now is what the script reads
        raise OSError(errno.EINVAL, "not a regular file")


def _link_fd(fd: int, dst: Path) -> bool:
    if not os.path.isdir(_PROC_FD):
        return False
    try:
        os.link(f"{_PROC_FD}/{fd}", dst, follow_symlinks=True)  # links the open file itself, not a name
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- writing back
def with_first_tags(text: str, first: list[str]) -> str:
    """The caption's first line with `first` in front, each once (the trigger word never doubled)."""
    line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return ", ".join(first + [t for t in captions.split_tags(line) if t not in first])


def write_back(spec: TaggerSpec, guard: Guard, staging: Staging) -> WriteReport:
    """Each caption the tagger wrote, into its subset folder (confined, atomic; only when it changed)."""
    report = WriteReport()
    first = spec.first_tags()
    for staged in staging.subsets:
        with guard.open_dir(staged.folder, "subset folder") as folder:
            for image in staged.images:
                _write_one(spec, folder, staging.root / staged.stage, image, first, report, staged.label)
    return report


def _write_one(
    spec: TaggerSpec,
    folder: Folder,
    stage: Path,
    image: str,
    first: list[str],
    report: WriteReport,
    label: str,
):
    cap, where = caption_name(image, spec), f"{label}/{image}"
    try:
        made = (stage / cap).read_bytes()[:MAX_CAPTION_BYTES].decode("utf-8", errors="replace")
    except FileNotFoundError:
        report.skipped[where] = "the tagger wrote no caption for it (see the log lines above)"
        return
    text = with_first_tags(made, first)
    why = _caption_slot_problem(folder, cap) or ("" if text else "no tag reached the thresholds")
    if why:
        report.skipped[where] = why
        return
    try:
        old = folder.read_own_text(cap, MAX_CAPTION_BYTES) if folder.exists(cap) else None
        if old is not None and old.rstrip("\r\n") == text:
            report.unchanged.append(where)
        else:
            folder.write_atomic(cap, (text + "\n").encode("utf-8"))
            report.written.append(where)
    except (OSError, WorkbenchError) as exc:  # swapped for a link or a FIFO since the check
        report.skipped[where] = (
            f"its caption {cap} cannot be written ({getattr(exc, 'strerror', None) or exc})"
        )
        return
    report.texts.append(text)
