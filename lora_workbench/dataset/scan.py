"""Scan a training project: its subset folders, the images and videos the trainers will read, their
sizes (frames, fps and duration for a video) and captions.

A project (see project.py) keeps its subsets as `images/N_Subject/` folders (and optionally
`regularization/N_Subject/`), each image with a caption beside it. A plain folder of images (the
images right in the project folder, or right in its images/ with no subset folders) is read as one
subset named after the project folder: the first thing most people try, taken as it is. `scan_project` reads the folders
through a `Guard` (confined.py), so a workflow's project can never make it read outside the allowed
roots, and counts images and captions by sd-scripts' own rules (images.py, captions.py). It judges
nothing: checks.py turns a scan into errors and warnings. Videos (videos.py: musubi-tuner's extensions,
measured from their headers) are counted beside the images; a folder of videos is a video subset.
A subset's `control/` folder holds the reference image of each training image (image pairs: FLUX.1
Kontext, Qwen-Image-Edit), matched by name as musubi-tuner matches them; it is read through the same
guard, and its images are never training images.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PathNotAllowed, WorkbenchError
from . import captions, videos
from .confined import Entry, Folder, Guard
from .images import DEFAULT_RULES, IMAGE, PLUGIN, ImageRules, image_size, image_size_decoded

CAPTION_EXT = ".txt"
TRAIN_DIR = "images"
REG_DIR = "regularization"
# musubi-tuner's control_directory of a subset: `images/N_Subject/control/<stem>.png` (or `<stem>_0.png`,
# `<stem>_1.png`, ... for several reference images) beside `images/N_Subject/<stem>.jpg`.
CONTROL_DIR = "control"
# Save Training Images leaves this file in a subset whose PNGs carry masks as alpha: the dataset step
# then writes `alpha_mask = true` for that subset, and sd-scripts masks the loss with it.
ALPHA_MASK_MARKER = ".lora-workbench-alpha-mask"
_SUBSET_RE = re.compile(r"^(\d+)_(.+)$", re.S)


def parse_subset_dirname(dirname: str) -> tuple[int | None, str]:
    """`3_Subject` -> (3, "Subject"); a name without a number prefix -> (None, name)."""
    m = _SUBSET_RE.match(dirname)
    if m:
        return int(m.group(1)), m.group(2)
    return None, dirname


def is_utf8(text: str) -> bool:
    """False for a name that holds bytes which are not UTF-8 (Python keeps them as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class SubsetScan:
    """One folder of images/ or regularization/, as sd-scripts will read it."""

    folder: str  # absolute path as listed (a link keeps its own name here)
    dirname: str  # e.g. "3_Subject"
    name: str  # "Subject" (the whole dirname when there is no number prefix)
    repeats: int | None  # the folder's number prefix, None without one
    is_reg: bool
    link: str | None = None  # where the folder resolves to when it is a link
    images: list[str] = field(default_factory=list)  # file names sd-scripts reads, sorted
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # file name -> (w, h)
    corrupt: dict[str, str] = field(default_factory=dict)  # image -> why it cannot be read
    refused: dict[str, str] = field(default_factory=dict)  # image -> why it is not read (a link out)
    not_files: dict[str, str] = field(default_factory=dict)  # image-like names that are no file
    skipped: dict[str, str] = field(default_factory=dict)  # image-like files sd-scripts skips -> why
    missing_captions: list[str] = field(default_factory=list)  # image names without a caption
    empty_captions: list[str] = field(default_factory=list)  # caption names: empty or a blank first line
    bad_captions: dict[str, str] = field(default_factory=dict)  # caption -> why it cannot be read
    multiline_captions: list[str] = field(default_factory=list)
    bom_captions: list[str] = field(default_factory=list)
    caption_texts: dict[str, str] = field(default_factory=dict)  # caption name -> text (keywords)
    error: str = ""  # the folder itself could not be read (or is refused)
    flat: bool = False  # a plain folder of images read as the one subset (never renamed)
    alpha_mask: bool = False  # the folder holds Save Training Images' marker: masks are the PNGs' alpha
    videos: list[str] = field(default_factory=list)  # video file names musubi-tuner reads, sorted
    video_info: dict[str, videos.VideoInfo] = field(default_factory=dict)  # video -> frames, fps, size
    unmeasured: list[str] = field(default_factory=list)  # videos in a container whose length is not read
    control_dir: str = ""  # its control/ folder (a link's checked target), "" without one
    controls: list[str] = field(default_factory=list)  # control image names, sorted
    without_control: list[str] = field(default_factory=list)  # training images no control image matches
    unmatched_controls: list[str] = field(default_factory=list)  # control images matching no training image
    odd_controls: list[str] = field(
        default_factory=list
    )  # `<stem>_<not a number>`: musubi-tuner stops on them

    @property
    def image_dir(self) -> str:
        """The folder sd-scripts is pointed at: a link's checked target, so it reads what was scanned."""
        return self.link or self.folder

    @property
    def image_count(self) -> int:
        return len(self.images)

    @property
    def video_count(self) -> int:
        return len(self.videos)

    @property
    def item_count(self) -> int:
        """The files an epoch trains once per repeat: images, or videos (one item each); a folder
        holding both trains its images (the kind below), so its videos are not counted."""
        return len(self.images) if self.images else len(self.videos)

    @property
    def kind(self) -> str:
        """ "video" for a folder of videos, else "image" (musubi-tuner's image_directory or video_directory)."""
        return "video" if self.videos and not self.images else "image"

    @property
    def mixed(self) -> bool:
        """Images and videos in one folder: one dataset entry of musubi-tuner reads one kind."""
        return bool(self.images and self.videos)

    @property
    def captions(self) -> int:
        return self.item_count - len(self.missing_captions)

    def frame_range(self) -> tuple[int, int]:
        """(fewest, most) frames of the measured videos; (0, 0) without any."""
        frames = [v.frames for v in self.video_info.values()]
        return (min(frames), max(frames)) if frames else (0, 0)

    def fps_values(self) -> list[float]:
        return sorted({v.fps for v in self.video_info.values()})

    def size_counts(self) -> dict[str, int]:
        c = Counter(f"{w}x{h}" for w, h in self.sizes.values())
        return dict(c.most_common())

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "dirname": self.dirname,
            "name": self.name,
            "repeats": self.repeats,
            "is_reg": self.is_reg,
            "link": self.link,
            "images": self.image_count,
            "captions": self.captions,
            "missing_captions": list(self.missing_captions),
            "empty_captions": list(self.empty_captions),
            "bad_captions": dict(self.bad_captions),
            "corrupt": dict(self.corrupt),
            "refused": dict(self.refused),
            "not_files": dict(self.not_files),
            "skipped": dict(self.skipped),
            "sizes": self.size_counts(),
            "error": self.error,
            "flat": self.flat,
            "kind": self.kind,
            "videos": self.video_count,
            "frames": list(self.frame_range()),
            "fps": self.fps_values(),
            "video_info": {n: v.to_dict() for n, v in self.video_info.items()},
            "unmeasured": list(self.unmeasured),
            "control_dir": self.control_dir,
            "controls": len(self.controls),
            "without_control": list(self.without_control),
            "unmatched_controls": list(self.unmatched_controls),
            "odd_controls": list(self.odd_controls),
        }


@dataclass
class ProjectScan:
    project_dir: str
    subsets: list[SubsetScan]
    loose_images: list[str] = field(default_factory=list)  # images right in images/ (kohya ignores them)
    missing_folders: list[str] = field(default_factory=list)  # images/ or regularization/ absent
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why) links out of the roots
    broken_links: list[str] = field(default_factory=list)
    followed_links: list[str] = field(default_factory=list)  # unconfined (CLI): links followed, said so
    caption_extension: str = CAPTION_EXT
    rules: ImageRules = DEFAULT_RULES

    @property
    def train(self) -> list[SubsetScan]:
        return [s for s in self.subsets if not s.is_reg]

    @property
    def reg(self) -> list[SubsetScan]:
        return [s for s in self.subsets if s.is_reg]

    def to_dict(self) -> dict:
        return {
            "project_dir": self.project_dir,
            "subsets": [s.to_dict() for s in self.subsets],
            "loose_images": list(self.loose_images),
            "missing_folders": list(self.missing_folders),
            "refused": [list(r) for r in self.refused],
            "broken_links": list(self.broken_links),
            "followed_links": list(self.followed_links),
            "caption_extension": self.caption_extension,
            "images": sum(s.image_count for s in self.train),
            "reg_images": sum(s.image_count for s in self.reg),
            "videos": sum(s.video_count for s in self.train),
        }


@dataclass
class _Reader:
    """How one scan reads: the guard, sd-scripts' image rules, the caption extension, decode or not."""

    guard: Guard
    rules: ImageRules
    caption_extension: str
    verify: bool
    check_cancel: Callable[[], None] | None = None  # before each file; raises to stop (ComfyUI's interrupt)


def open_project(project_dir: str | os.PathLike, guard: Guard) -> Folder:
    """The project folder, opened through the guard; a missing folder is a clear error."""
    root = Path(project_dir).expanduser()
    if not root.is_dir():
        raise WorkbenchError(
            f"The project folder {root} does not exist; pick a folder of images (a new, empty folder "
            f"gets the project layout from the dataset node)."
        )
    return guard.open_dir(root, "project folder")


def scan_project(
    project_dir: str | os.PathLike,
    *,
    verify: bool = False,
    caption_extension: str = CAPTION_EXT,
    guard: Guard | None = None,
    rules: ImageRules = DEFAULT_RULES,
    check_cancel: Callable[[], None] | None = None,
) -> ProjectScan:
    """Every subset of images/ and regularization/ with its images, sizes and captions.

    `guard` confines every folder and file read to its roots (default: unconfined, links followed and
    listed in `followed_links`). `verify=True` decodes every image fully (slow) instead of its header.
    `check_cancel` is called before each file; what it raises stops the scan (a large folder).
    """
    reader = _Reader(guard or Guard(), rules, caption_extension, verify, check_cancel)
    with open_project(project_dir, reader.guard) as top:
        scan = ProjectScan(str(top.path), [], caption_extension=caption_extension, rules=rules)
        listing = {e.name: e for e in top.entries()}
        for sub, is_reg in ((TRAIN_DIR, False), (REG_DIR, True)):
            _scan_top(top, listing.get(sub), sub, is_reg, reader, scan)
        if not scan.train and any(_is_image_file(e, reader) for e in listing.values()):
            scan.subsets.insert(0, _flat_subset(top, scan, reader))
            scan.missing_folders = [m for m in scan.missing_folders if m != TRAIN_DIR]
    scan.followed_links = list(reader.guard.followed)
    return scan


def _scan_top(top: Folder, entry: Entry | None, sub: str, is_reg: bool, reader: _Reader, scan: ProjectScan):
    if entry is None or entry.kind in ("file", "other", "missing"):
        scan.missing_folders.append(sub)
        return
    if entry.kind == "outside":
        scan.refused.append((str(top.path / sub), f"a link to {entry.link}, outside the allowed roots"))
        scan.missing_folders.append(sub)
        return
    with top.subdir(entry, f"{sub} folder") as base:
        for e in base.entries():
            _scan_entry(base, e, is_reg, reader, scan)
        if not is_reg and not scan.train and scan.loose_images:  # images/ holds images, no subsets
            scan.subsets.insert(0, _flat_subset(base, scan, reader, link=entry.link))
            scan.loose_images = []


def _is_image_file(e: Entry, reader: _Reader) -> bool:
    """An entry of the project folder that makes it a plain folder of images (links out count too:
    the scan then refuses them by name)."""
    return not e.name.startswith(".") and e.kind != "dir" and _is_media(e.name, reader)


def _is_media(name: str, reader: _Reader) -> bool:
    """A file a trainer reads: an image sd-scripts globs, or a video musubi-tuner globs."""
    return reader.rules.classify(name) == IMAGE or videos.is_video(name)


def _flat_subset(folder: Folder, scan: ProjectScan, reader: _Reader, link: str | None = None) -> SubsetScan:
    """A plain folder of images as the one training subset, named after the project folder; its
    repeats come from the dataset options (prepare.analyse), nothing in it is moved or renamed."""
    name = Path(scan.project_dir).name or "subject"
    sub = SubsetScan(str(folder.path), folder.path.name, name, None, False, link=link, flat=True)
    try:
        _scan_files(folder, reader, sub)
    except (OSError, WorkbenchError) as exc:
        sub.error = getattr(exc, "strerror", None) or str(exc)
    return sub


def _scan_entry(base: Folder, e: Entry, is_reg: bool, reader: _Reader, scan: ProjectScan) -> None:
    path = str(base.path / e.name)
    if e.name.startswith("."):
        return
    if e.kind == "outside":
        scan.refused.append((path, f"a link to {e.link}, outside the allowed roots"))
    elif e.kind == "missing":
        scan.broken_links.append(path)
    elif e.kind == "dir":
        scan.subsets.append(_scan_subset(base, e, is_reg, reader))
    elif not is_reg and e.kind == "file" and _is_media(e.name, reader):
        scan.loose_images.append(e.name)


def _scan_subset(base: Folder, entry: Entry, is_reg: bool, reader: _Reader) -> SubsetScan:
    repeats, name = parse_subset_dirname(entry.name)
    sub = SubsetScan(str(base.path / entry.name), entry.name, name, repeats, is_reg, link=entry.link)
    try:
        with base.subdir(entry, "subset folder") as folder:
            _scan_files(folder, reader, sub)
    except PathNotAllowed as exc:
        sub.error = str(exc)
    except (OSError, WorkbenchError) as exc:
        sub.error = getattr(exc, "strerror", None) or str(exc)
    return sub


def _scan_files(folder: Folder, reader: _Reader, sub: SubsetScan) -> None:
    files = {e.name: e for e in folder.entries()}
    marker = files.get(ALPHA_MASK_MARKER)
    sub.alpha_mask = marker is not None and marker.kind == "file" and marker.link is None
    for e in files.values():
        if reader.check_cancel is not None:
            reader.check_cancel()
        _scan_file(folder, e, files, reader, sub)
    _scan_control(folder, files.get(CONTROL_DIR), reader, sub)


def _scan_control(folder: Folder, entry: Entry | None, reader: _Reader, sub: SubsetScan) -> None:
    """The subset's control/ folder: its images read like training images (links out refused, what
    is no file named), then matched to the training images by name."""
    if entry is None or entry.kind in ("file", "other", "missing"):
        return
    if entry.kind == "outside":
        sub.refused[CONTROL_DIR] = f"a link to {entry.link}, outside the allowed roots"
        return
    sub.control_dir = entry.link or os.path.join(sub.image_dir, CONTROL_DIR)
    try:
        with folder.subdir(entry, "control folder") as control:
            for e in control.entries():
                if reader.check_cancel is not None:
                    reader.check_cancel()
                _scan_control_file(control, e, reader, sub)
    except PathNotAllowed as exc:
        sub.refused[CONTROL_DIR] = str(exc)
    except (OSError, WorkbenchError) as exc:
        sub.corrupt[CONTROL_DIR] = getattr(exc, "strerror", None) or str(exc)
    sub.controls.sort()
    match = match_controls(sub.images, sub.controls)
    sub.without_control, sub.unmatched_controls, sub.odd_controls = match.without, match.unmatched, match.odd


def _scan_control_file(control: Folder, e: Entry, reader: _Reader, sub: SubsetScan) -> None:
    if e.name.startswith(".") or reader.rules.classify(e.name) != IMAGE:
        return
    name = f"{CONTROL_DIR}/{e.name}"  # the problem dicts name it from the subset folder
    if e.kind == "outside":
        sub.refused[name] = f"a link to {e.link}, outside the allowed roots"
    elif e.kind != "file":
        sub.not_files[name] = {"dir": "a folder", "missing": "a broken link"}.get(e.kind, "not a file")
    else:
        read = image_size_decoded if reader.verify else image_size
        try:
            with control.open_file(e) as f:
                read(f)
            sub.controls.append(e.name)
        except PathNotAllowed as exc:
            sub.refused[name] = str(exc)
        except Exception as exc:  # Pillow raises many kinds; all mean "cannot be read"
            sub.corrupt[name] = str(exc) or type(exc).__name__


@dataclass
class ControlMatch:
    """How a subset's control images pair with its training images (musubi-tuner's rule)."""

    without: list[str]  # training images no control image matches
    unmatched: list[str]  # control images matching no training image (not used)
    odd: list[str]  # matched as `<stem>_<not a number>`: musubi-tuner stops on them


def match_controls(images: list[str], controls: list[str]) -> ControlMatch:
    """Pair control images with training images by musubi-tuner's rule: `a.jpg` takes `a.png` and
    `a_0.png`, `a_1.png`...; longer names choose first; what follows `a_` must be a number."""
    left = set(controls)
    without: list[str] = []
    odd: list[str] = []
    for image in sorted(images, key=len, reverse=True):
        stem = os.path.splitext(image)[0]
        hits = {c for c in left if c.startswith((stem + ".", stem + "_"))}
        left -= hits
        odd += [c for c in hits if not _numbered(os.path.splitext(c)[0], stem)]
        if not hits:
            without.append(image)
    return ControlMatch(sorted(without), sorted(left), sorted(odd))


def _numbered(control_stem: str, stem: str) -> bool:
    return control_stem == stem or control_stem[len(stem) + 1 :].isdigit()


def _scan_file(folder: Folder, e: Entry, files: dict[str, Entry], reader: _Reader, sub: SubsetScan) -> None:
    kind = reader.rules.classify(e.name)
    if kind is None:
        if videos.classify(e.name) is not None:
            _scan_video(folder, e, files, reader, sub)
        return
    if e.kind == "outside" and kind in (IMAGE, PLUGIN):  # musubi-tuner reads .avif whatever sd-scripts does
        sub.refused[e.name] = f"a link to {e.link}, outside the allowed roots"
    elif kind != IMAGE:
        sub.skipped[e.name] = kind
    elif e.kind != "file":
        sub.not_files[e.name] = {"dir": "a folder", "missing": "a broken link"}.get(e.kind, "not a file")
    else:
        sub.images.append(e.name)
        _read_size(folder, e, reader, sub)
        _read_caption(folder, files, e.name, reader, sub)


def _scan_video(folder: Folder, e: Entry, files: dict[str, Entry], reader: _Reader, sub: SubsetScan) -> None:
    """A video beside or instead of images: counted, measured from its header, its caption read."""
    kind = videos.classify(e.name)
    if kind != videos.VIDEO:
        sub.skipped[e.name] = kind
    elif e.kind == "outside":
        sub.refused[e.name] = f"a link to {e.link}, outside the allowed roots"
    elif e.kind != "file":
        sub.not_files[e.name] = {"dir": "a folder", "missing": "a broken link"}.get(e.kind, "not a file")
    else:
        sub.videos.append(e.name)
        if videos.measurable(e.name):
            _read_video(folder, e, sub)
        else:
            sub.unmeasured.append(e.name)
        _read_caption(folder, files, e.name, reader, sub, video=True)


def _read_video(folder: Folder, e: Entry, sub: SubsetScan) -> None:
    try:
        with folder.open_file(e) as f:
            sub.video_info[e.name] = videos.video_info(f, e.name)
    except PathNotAllowed as exc:
        sub.refused[e.name] = str(exc)
    except (OSError, videos.VideoUnreadable) as exc:
        sub.corrupt[e.name] = getattr(exc, "strerror", None) or str(exc)


def _read_size(folder: Folder, e: Entry, reader: _Reader, sub: SubsetScan) -> None:
    read = image_size_decoded if reader.verify else image_size
    try:
        with folder.open_file(e) as f:
            sub.sizes[e.name] = read(f)
    except PathNotAllowed as exc:
        sub.refused[e.name] = str(exc)
    except Exception as exc:  # Pillow raises many kinds; all mean "cannot be read"
        sub.corrupt[e.name] = str(exc) or type(exc).__name__


def _read_caption(
    folder: Folder, files: dict[str, Entry], image: str, reader: _Reader, sub: SubsetScan, video: bool = False
):
    found = captions.check(folder, files, image, reader.caption_extension, video)
    if found.problem == captions.MISSING:
        sub.missing_captions.append(image)
        return
    if found.name in sub.caption_texts or found.name in sub.bad_captions:
        return  # one caption shared by several images (the face-crop naming) is judged once
    if found.problem == captions.EMPTY:
        sub.empty_captions.append(found.name)
    elif found.problem:
        sub.bad_captions[found.name] = found.detail or found.problem
        return
    sub.caption_texts[found.name] = found.text
    if found.multiline:
        sub.multiline_captions.append(found.name)
    if found.bom:
        sub.bom_captions.append(found.name)


def caption_keywords(scan: ProjectScan, include_reg: bool = False) -> list[tuple[str, int]]:
    """Distinct comma-separated tags across the scanned captions with their counts, most frequent first."""
    texts = (t for s in scan.subsets if include_reg or not s.is_reg for t in s.caption_texts.values())
    return captions.keywords(texts)
