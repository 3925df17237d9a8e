"""Images and captions into a training project: `images/<repeats>_<subject>/<content hash>.png` and its
caption, written through the project's open folders (temp file, then rename; never through a link).

The same image twice is one file and queuing a graph again adds nothing; a changed caption rewrites only
its caption file and removes the caches sd-scripts would otherwise train the old text from: the
text-encoder outputs beside the image (`<stem>_te_outputs.npz` and the other families' suffixes, which it
never checks against the caption) and the subset's `metadata_cache.json` (`cache_info`, which holds the
captions). Nothing else in the folder is touched. Images with masks are stored as RGBA and the subset is
marked (MARKER) so the dataset step writes `alpha_mask = true` for it: sd-scripts then masks the loss.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field

from ..errors import PathNotAllowed, ValidationError, WorkbenchError
from . import captions_merge, pictures, project
from .confined import Entry, Folder, Guard
from .pictures import Picture
from .scan import ALPHA_MASK_MARKER, CAPTION_EXT, TRAIN_DIR, parse_subset_dirname

MARKER = ALPHA_MASK_MARKER  # in a subset folder: its PNGs carry masks as alpha
INFO_CACHE = "metadata_cache.json"  # sd-scripts' cache_info file (captions and sizes)
# sd-scripts' text-encoder output caches beside each image (train_util, strategy_*.py at 48d368fa)
TE_CACHE_SUFFIXES = (
    "_te_outputs.npz",
    "_sd3_te.npz",
    "_flux_te.npz",
    "_lumina_te.npz",
    "_hi_te.npz",
    "_anima_te.npz",
)
MAX_REPEATS = 10_000
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I)
_FORBIDDEN = set('<>:"/\\|?*')


@dataclass
class AddSpec:
    """What the node's inputs or the command's flags ask for."""

    project_dir: str
    subject: str
    repeats: int = 1
    captions: object = None  # "", one text, one line per image, or a list (see captions_merge.per_image)
    trigger_word: str = ""
    caption_mode: str = captions_merge.REPLACE
    fit: str = "none"
    resolution: tuple[int, int] = (512, 512)
    caption_extension: str = CAPTION_EXT


@dataclass
class AddReport:
    """What one run stored, for the node's summary and the command's output."""

    folder: str
    added: list[str] = field(default_factory=list)  # new image files
    same: list[str] = field(default_factory=list)  # already there, caption unchanged
    recaptioned: list[str] = field(default_factory=list)  # caption rewritten (caches removed)
    uncaptioned: list[str] = field(default_factory=list)  # no caption text: no caption file written
    masked: bool = False

    def summary(self) -> str:
        parts = [f"{len(self.added)} new", f"{len(self.same)} unchanged"]
        if self.recaptioned:
            parts.append(f"{len(self.recaptioned)} caption(s) changed (their text-encoder caches removed)")
        text = f"Saved to {self.folder}: " + ", ".join(parts) + "."
        if self.masked:
            text += " Masks are stored as alpha; the subset trains with alpha_mask = true."
        if self.uncaptioned:
            text += (
                f" {len(self.uncaptioned)} image(s) have no caption (set missing_caption on Dataset Subset "
                f"Weights, or give captions)."
            )
        return text


def subset_folder(subject: str, repeats: int) -> str:
    """`<repeats>_<subject>` when the subject is a usable folder name; else a ValidationError sentence."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ValidationError(f"repeats must be a whole number from 1 to {MAX_REPEATS}, not {repeats!r}.")
    name = unicodedata.normalize("NFC", (subject or "").strip())
    why = _bad_subject(name)
    if why:
        raise ValidationError(f"The subject {name[:60]!r} cannot be a folder name: {why}.")
    folder = f"{repeats}_{name}"
    if len(folder.encode("utf-8")) > 255:
        raise ValidationError(
            f"The subject {name[:60]!r}... is {len(name.encode('utf-8'))} bytes; with the repeats prefix a "
            f"folder name may be at most 255 bytes. Use a shorter subject."
        )
    return folder


def _bad_subject(name: str) -> str:
    if not name:
        return "it is empty; name the subject (e.g. the trigger word)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it holds a control character (a NUL or a line break)"
    if _FORBIDDEN & set(name) or name in (".", ".."):
        return 'it holds / \\ : * ? " < > | or is . or .. (use letters, digits, spaces, - and _)'
    if name.startswith(".") or name.endswith((".", " ")):
        return "it starts with a dot (sd-scripts skips such folders) or ends with a dot or space"
    if _RESERVED.match(name):
        return "it is a name Windows reserves for devices (CON, NUL, COM1, ...)"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    return ""


@dataclass
class _Plan:
    folder: str
    captions: list[str]
    trigger: str
    mode: str
    ext: str


def plan(spec: AddSpec, count: int) -> _Plan:
    """Every input checked before a file is written: subject, repeats, captions, trigger, mode, fit."""
    if count < 1:
        raise ValidationError("No images were given; connect an IMAGE batch (or name image files).")
    folder = subset_folder(spec.subject, spec.repeats)
    if spec.caption_mode not in captions_merge.CAPTION_MODES:
        modes = ", ".join(captions_merge.CAPTION_MODES)
        raise ValidationError(f"caption_mode must be one of {modes}, not {spec.caption_mode!r}.")
    if spec.fit not in pictures.FIT_MODES:
        raise ValidationError(f"fit must be one of {', '.join(pictures.FIT_MODES)}, not {spec.fit!r}.")
    ext = spec.caption_extension
    if not ext.startswith(".") or ext == "." or len(ext) > 32 or any(c in ext for c in "/\\\0\n\r"):
        raise ValidationError(f"The caption extension {ext!r} must look like .txt or .caption.")
    texts = captions_merge.per_image(spec.captions, count)
    trigger = captions_merge.checked_trigger(spec.trigger_word)
    return _Plan(folder, texts, trigger, spec.caption_mode, ext)


def add_images(spec: AddSpec, pics: list[Picture], guard: Guard | None = None) -> AddReport:
    """Store `pics` in the project's subset folder; everything is checked before the first write."""
    guard = guard or Guard()
    p = plan(spec, len(pics))
    pictures.check_sizes([pic.image.size for pic in pics])
    ready = [pictures.with_mask(pictures.fitted(pic, spec.fit, spec.resolution)) for pic in pics]
    masked = any(pic.mask is not None for pic in pics)
    if project.is_new(spec.project_dir, guard):
        project.init_project(spec.project_dir, guard)
    with guard.open_dir(spec.project_dir, "project folder") as root, _train_dir(root) as images:
        _refuse_other_repeats(images, p.folder)
        with _subset(images, p.folder) as sub:
            report = AddReport(str(sub.path), masked=masked)
            for image, text in zip(ready, p.captions, strict=True):
                _store(sub, image, text, p, report)
            if masked and not _is_file(sub, MARKER):
                sub.write_atomic(MARKER, b"masks are stored as the PNGs' alpha\n")
            if report.added or report.recaptioned:
                _remove(sub, INFO_CACHE)
    return report


def _train_dir(root: Folder) -> Folder:
    try:
        return root.mkdir_open(TRAIN_DIR)
    except PathNotAllowed:
        raise PathNotAllowed(
            f"{root.path / TRAIN_DIR} is a link or not a folder; images are only saved into a plain "
            f"{TRAIN_DIR}/ folder of the project."
        ) from None


def _subset(images: Folder, folder: str) -> Folder:
    try:
        return images.mkdir_open(folder)
    except PathNotAllowed:
        raise PathNotAllowed(
            f"{images.path / folder} is a link or not a folder; move it away, or choose another subject."
        ) from None


def _refuse_other_repeats(images: Folder, folder: str) -> None:
    """A subject already in the project with other repeats would become a second subset of that name."""
    repeats, subject = parse_subset_dirname(folder)
    for e in images.entries():
        n, name = parse_subset_dirname(e.name)
        if name == subject and e.name != folder and not e.name.startswith("."):
            raise ValidationError(
                f"The subject {subject!r} is already in {images.path / e.name} with {n or 'no'} repeats; set "
                f"repeats to {n or 1} to add to it, or rename that folder."
            )


def _store(sub: Folder, image, text: str, p: _Plan, report: AddReport) -> None:
    name = pictures.content_name(image)
    stem = os.path.splitext(name)[0]
    if _is_file(sub, name):
        fresh = False
    else:  # absent, or something planted under our name (a link, a FIFO): replaced, never followed
        _write(sub, name, pictures.png_bytes(image))
        report.added.append(name)
        fresh = True
    caption_name = stem + p.ext
    existing = _own_caption(sub, caption_name)
    caption = captions_merge.merge(existing, text, p.mode, p.trigger)
    if not caption:
        report.uncaptioned.append(name)
    elif existing is None or caption != captions_merge.one_line(existing):
        _write(sub, caption_name, (caption + "\n").encode("utf-8"))
        if not fresh:
            report.recaptioned.append(name)
            for suffix in TE_CACHE_SUFFIXES:
                _remove(sub, stem + suffix)
    if not fresh and name not in report.recaptioned:
        report.same.append(name)


def _write(sub: Folder, name: str, data: bytes) -> None:
    """Write through a temp file and a rename; a folder in the way is a sentence, not a traceback."""
    try:
        sub.write_atomic(name, data)
    except IsADirectoryError:
        raise ValidationError(f"{sub.path / name} is a folder; move it away, then save again.") from None
    except OSError as exc:
        raise WorkbenchError(f"{sub.path / name} cannot be written ({exc.strerror or exc}).") from None


def _own_caption(sub: Folder, name: str) -> str | None:
    """The caption file's text when what is opened (no-follow) is a regular file with one name; a link,
    a FIFO or a hard link to a file elsewhere counts as none: it is replaced by the write, never read."""
    try:
        fd = sub.open_fd(Entry(name, "file"))
    except (OSError, WorkbenchError):
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        return f.read(captions_merge.MAX_CAPTION_CHARS * 4).decode("utf-8", errors="replace")


def _is_file(sub: Folder, name: str) -> bool:
    st = sub.lstat(name)
    return st is not None and stat.S_ISREG(st.st_mode)


def _remove(sub: Folder, name: str) -> None:
    """Remove a stale cache file (a link is removed, not followed; a folder of that name is left)."""
    try:
        sub.unlink(name, missing_ok=True)
    except OSError:
        pass
