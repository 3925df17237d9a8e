"""The caption editor's core: list a subset's images with their captions, change captions in bulk, save.

What is edited is a caption's first line, the one sd-scripts trains on (`captions.py`); any later lines
and a byte-order mark are written back as they were. Everything is read and written through the
dataset's confined reader (`confined.Guard`): the project, `images/` (or `regularization/`) and the
subset folder must be plain folders inside the allowed roots, opened without following a link; only
plain image files of that subset are listed or get a caption, and a caption file that is a link, a FIFO
or a folder is refused. A save names the caption each image had when the editor read it (a hash of
the file); one changed on disk since is not overwritten (`CaptionConflict`). Each file is written
through a temporary file renamed into place inside the open subset folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from ..errors import PathNotAllowed, ValidationError, WorkbenchError
from . import captions
from .captions_merge import split_tags
from .confined import Entry, Folder, Guard
from .images import IMAGE, ImageRules, rules_in_use
from .scan import CAPTION_EXT, REG_DIR, TRAIN_DIR, parse_subset_dirname

TAG_SEP = ", "  # kohya's tag captions: tags separated by a comma and a space
MAX_PAGE = 1000  # images listed per request (the editor pages through bigger subsets)
DEFAULT_PAGE = 300
MAX_SUBSET_FILES = 50_000  # names in one subset folder the editor reads at all
MAX_SAVE_ITEMS = 1000  # captions in one save or one bulk request
MAX_CAPTION_CHARS = 8192  # one caption line (sd-scripts' CLIP sees 75-225 tokens of it)
MAX_TAG_CHARS = 512
_EXT_RE = re.compile(r"^\.[A-Za-z0-9_-]{1,16}$")
TOPS = (TRAIN_DIR, REG_DIR)


class CaptionConflict(WorkbenchError):
    """A caption changed on disk after the editor read it: it is not overwritten."""


@dataclass
class CaptionItem:
    """One image of a subset and its caption as the editor shows it."""

    image: str
    caption_file: str  # the file sd-scripts reads (or will, once written)
    text: str = ""  # the first line, without a byte-order mark
    hash: str = ""  # sha256 of the caption file's bytes; "" when there is none
    missing: bool = False  # no caption file: sd-scripts falls back to the class tokens
    more_lines: int = 0  # lines after the first that hold text (kept, never trained)
    problem: str = ""  # a sentence when the caption cannot be edited here

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SubsetCaptions:
    """One page of a subset's images with captions, the tag counts of the whole subset, and what was skipped."""

    key: str  # "images/3_Alice"
    name: str
    repeats: int | None
    is_reg: bool
    total: int
    offset: int
    items: list[CaptionItem] = field(default_factory=list)
    tags: list[tuple[str, int]] = field(default_factory=list)
    missing: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why it is not editable

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["items"] = [i.to_dict() for i in self.items]
        d["tags"] = [list(t) for t in self.tags]
        return d


# --------------------------------------------------------------------------- tags (pure)
def first_line(text: str) -> tuple[str, str, str]:
    """(byte-order mark or "", the first line, the rest of the text from its line break on)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom) :]
    m = captions.LINE_BREAK.search(body)
    if m is None:
        return bom, body, ""
    return bom, body[: m.start()], body[m.start() :]


def join_tags(tags: list[str]) -> str:
    return TAG_SEP.join(tags)


def check_tag(tag: str, what: str = "tag") -> str:
    """A tag to add or remove: stripped, one line, no comma (it would be two tags)."""
    if not isinstance(tag, str):
        raise ValidationError(f"The {what} must be text, not {type(tag).__name__}.")
    tag = tag.strip()
    if not tag:
        raise ValidationError(f"The {what} is empty; type the tag to use.")
    if "," in tag or captions.LINE_BREAK.search(tag):
        raise ValidationError(f"The {what} {tag[:60]!r} holds a comma or a line break; give one tag.")
    if len(tag) > MAX_TAG_CHARS:
        raise ValidationError(f"The {what} is {len(tag)} characters long; at most {MAX_TAG_CHARS}.")
    return tag


def add_tag(caption: str, tag: str, first: bool = False) -> str:
    """The caption with `tag` added at the end (or first); unchanged when it already has it."""
    tags = split_tags(caption)
    if tag in tags:
        return caption
    return join_tags([tag, *tags] if first else [*tags, tag])


def remove_tag(caption: str, tag: str) -> str:
    """The caption without any tag equal to `tag`; unchanged when it has none."""
    tags = split_tags(caption)
    if tag not in tags:
        return caption
    return join_tags([t for t in tags if t != tag])


def replace_text(caption: str, find: str, replace: str) -> str:
    """Every occurrence of `find` replaced (plain text, case-sensitive)."""
    return caption.replace(find, replace) if find else caption


def trigger_first(caption: str, trigger: str) -> str:
    """The trigger word as the first tag, once (a copy elsewhere in the caption is dropped)."""
    tags = split_tags(caption)
    if tags[:1] == [trigger] and tags.count(trigger) == 1:
        return caption
    return join_tags([trigger, *(t for t in tags if t != trigger)])


BULK_OPS = ("add", "add_first", "remove", "replace", "trigger_first")


@dataclass(frozen=True)
class BulkOp:
    """One bulk action over captions: add (at the end or first), remove, find and replace, trigger first."""

    op: str
    tag: str = ""
    find: str = ""
    replace: str = ""

    def checked(self) -> BulkOp:
        if self.op not in BULK_OPS:
            raise ValidationError(
                f"The bulk action {self.op!r} is unknown; use one of {', '.join(BULK_OPS)}."
            )
        if self.op == "replace":
            if not isinstance(self.find, str) or not isinstance(self.replace, str) or not self.find:
                raise ValidationError(
                    "Find and replace needs the text to find (and the text to put instead)."
                )
            if captions.LINE_BREAK.search(self.find + self.replace):
                raise ValidationError("Find and replace works on one line; leave line breaks out.")
            if max(len(self.find), len(self.replace)) > MAX_TAG_CHARS:
                raise ValidationError(f"The find or replace text is longer than {MAX_TAG_CHARS} characters.")
            return self
        what = "trigger word" if self.op == "trigger_first" else "tag"
        return BulkOp(self.op, check_tag(self.tag, what))

    def apply(self, caption: str) -> str:
        if self.op in ("add", "add_first"):
            return add_tag(caption, self.tag, first=self.op == "add_first")
        if self.op == "remove":
            return remove_tag(caption, self.tag)
        if self.op == "replace":
            return replace_text(caption, self.find, self.replace)
        return trigger_first(caption, self.tag)


def bulk(op: BulkOp, texts: list[str]) -> list[str]:
    """`op` applied to each caption line (checked once; a caption it does not change comes back as it was)."""
    op = op.checked()
    check_count(texts, "captions")
    return [op.apply(check_caption(t)) for t in texts]


def tag_counts(texts) -> list[tuple[str, int]]:
    """Each tag with the number of captions that hold it, most frequent first."""
    return captions.keywords(" , ".join(dict.fromkeys(split_tags(t))) for t in texts)


def check_caption(text, image: str = "") -> str:
    """A caption line from the editor: text, one line, not huge."""
    where = f" of {image}" if image else ""
    if not isinstance(text, str):
        raise ValidationError(f"The caption{where} must be text, not {type(text).__name__}.")
    if captions.LINE_BREAK.search(text):
        raise ValidationError(
            f"The caption{where} holds a line break; sd-scripts trains on the first line only, so keep "
            "it on one line."
        )
    if len(text) > MAX_CAPTION_CHARS:
        raise ValidationError(
            f"The caption{where} is {len(text)} characters long; at most {MAX_CAPTION_CHARS}."
        )
    return text


def check_count(items: list, what: str) -> None:
    if not isinstance(items, list):
        raise ValidationError(f"The {what} must be a list.")
    if len(items) > MAX_SAVE_ITEMS:
        raise ValidationError(
            f"{len(items)} {what} in one request; at most {MAX_SAVE_ITEMS}. Save a page at a time."
        )


def check_extension(ext: str) -> str:
    if not isinstance(ext, str) or not _EXT_RE.match(ext):
        raise ValidationError(f"The caption extension {str(ext)[:40]!r} is not like .txt or .caption.")
    return ext


# --------------------------------------------------------------------------- opening a subset
def _plain_dir(parent: Folder, name: str, what: str) -> Folder:
    """A folder in `parent` that is a plain folder (not a link, not a file), opened without following."""
    entry = next((e for e in parent.entries() if e.name == name), None)
    if entry is None:
        raise FileNotFoundError(f"The {what} {parent.path / name} does not exist.")
    if entry.link is not None or entry.kind == "outside":
        raise PathNotAllowed(
            f"The {what} {parent.path / name} is a link; the caption editor edits only plain folders."
        )
    if entry.kind != "dir":
        raise ValidationError(f"The {what} {parent.path / name} is not a folder.")
    return parent.subdir(entry, what)


def parse_key(key: str) -> tuple[str, str]:
    """`images/3_Alice` -> ("images", "3_Alice"); anything else is a ValidationError sentence."""
    if not isinstance(key, str) or key.count("/") != 1:
        raise ValidationError(f"The subset {str(key)[:80]!r} is not like images/3_Subject.")
    top, name = key.split("/")
    if top not in TOPS or name in ("", ".", "..") or name.startswith(".") or "\x00" in name or "\\" in name:
        raise ValidationError(f"The subset {key[:80]!r} is not like images/3_Subject.")
    return top, name


@dataclass
class Project:
    """A project folder opened inside the roots, and how its captions are named."""

    path: str  # already confined by the caller (paths.confine)
    guard: Guard
    caption_extension: str = CAPTION_EXT
    rules: ImageRules | None = None

    def open(self) -> Folder:
        return self.guard.open_dir(self.path, "project folder")

    def open_subset(self, top: Folder, key: str) -> Folder:
        top_name, name = parse_key(key)
        with _plain_dir(top, top_name, f"{top_name} folder") as base:
            return _plain_dir(base, name, "subset folder")

    def image_rules(self) -> ImageRules:
        if self.rules is None:
            self.rules = rules_in_use()
        return self.rules


def list_subsets(project: Project) -> list[dict]:
    """The project's subset folders (plain folders only) as {key, name, repeats, is_reg}."""
    out = []
    with project.open() as top:
        listing = {e.name: e for e in top.entries()}
        for top_name in TOPS:
            e = listing.get(top_name)
            if e is None or e.kind != "dir" or e.link is not None:
                continue
            with top.subdir(e, f"{top_name} folder") as base:
                for sub in base.entries():
                    if sub.kind == "dir" and sub.link is None and not sub.name.startswith("."):
                        repeats, name = parse_subset_dirname(sub.name)
                        key = f"{top_name}/{sub.name}"
                        out.append(
                            {"key": key, "name": name, "repeats": repeats, "is_reg": top_name == REG_DIR}
                        )
    return out


# --------------------------------------------------------------------------- reading captions
def _files(folder: Folder) -> dict[str, Entry]:
    entries = folder.entries()
    if len(entries) > MAX_SUBSET_FILES:
        raise ValidationError(
            f"{folder.path} holds {len(entries)} names; the caption editor reads folders of at most "
            f"{MAX_SUBSET_FILES}."
        )
    return {e.name: e for e in entries}


def _images(files: dict[str, Entry], rules: ImageRules, skipped: dict[str, str]) -> list[str]:
    out = []
    for e in files.values():
        if rules.classify(e.name) != IMAGE:
            continue
        if e.link is not None or e.kind == "outside":
            skipped[e.name] = "a link (the editor shows only plain image files)"
        elif e.kind != "file":
            skipped[e.name] = "not a plain file"
        else:
            out.append(e.name)
    return out


def caption_name(image: str, files: dict[str, Entry], ext: str) -> str:
    """The caption file sd-scripts reads for `image`: an existing candidate, else `<stem><ext>`."""
    names = captions.candidates(image, ext)
    return next((n for n in names if n in files), names[0])


def read_caption(folder: Folder, files: dict[str, Entry], image: str, ext: str) -> CaptionItem:
    """One image's caption as the editor shows it (a link, FIFO or non-UTF-8 file gets a `problem`)."""
    name = caption_name(image, files, ext)
    entry = files.get(name)
    item = CaptionItem(image, name)
    if entry is None:
        item.missing = True
        return item
    if entry.link is not None or entry.kind == "outside":
        item.problem = f"{name} is a link; the editor does not read or write through links."
        return item
    if entry.kind != "file":
        item.problem = f"{name} is not a plain file."
        return item
    raw, problem = _read_raw(folder, name)
    if problem:
        item.problem = problem
        return item
    _fill(item, raw)
    return item


def _read_raw(folder: Folder, name: str) -> tuple[bytes, str]:
    try:
        raw = folder.read_bytes(Entry(name, "file"), captions.MAX_CAPTION_BYTES + 1)
    except (OSError, WorkbenchError) as exc:
        return b"", f"{name} cannot be read ({getattr(exc, 'strerror', None) or exc})."
    if len(raw) > captions.MAX_CAPTION_BYTES:
        return b"", f"{name} is larger than {captions.MAX_CAPTION_BYTES >> 20} MiB; it is no caption."
    return raw, ""


def _fill(item: CaptionItem, raw: bytes) -> None:
    item.hash = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        item.problem = (
            f"{item.caption_file} is not UTF-8 (byte {exc.start}); sd-scripts stops on it. Fix it by hand."
        )
        return
    _bom, line, rest = first_line(text)
    item.text = line
    item.more_lines = sum(1 for x in captions.LINE_BREAK.split(rest) if x.strip())


def subset_captions(project: Project, key: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> SubsetCaptions:
    """A page of one subset's images with their captions, and the tag counts over the whole subset."""
    top_name, name = parse_key(key)
    repeats, subject = parse_subset_dirname(name)
    ext = check_extension(project.caption_extension)
    with project.open() as top, project.open_subset(top, key) as folder:
        files = _files(folder)
        result = SubsetCaptions(key, subject, repeats, top_name == REG_DIR, 0, offset)
        images = _images(files, project.image_rules(), result.skipped)
        result.total = len(images)
        all_items = [read_caption(folder, files, image, ext) for image in images]
    result.items = all_items[offset : offset + limit]
    result.missing = sum(1 for i in all_items if i.missing)
    result.tags = tag_counts(i.text for i in all_items if not i.missing and not i.problem)
    return result


# --------------------------------------------------------------------------- saving
@dataclass(frozen=True)
class CaptionEdit:
    """One caption to write: the image it belongs to, the new first line, the hash the editor read."""

    image: str
    text: str
    hash: str  # "" when the editor saw no caption file


@dataclass
class SaveReport:
    written: list[str] = field(default_factory=list)  # caption files written
    unchanged: list[str] = field(default_factory=list)  # images whose caption already said that

    def to_dict(self) -> dict:
        return {"written": self.written, "unchanged": self.unchanged}


def parse_edits(items) -> list[CaptionEdit]:
    """The `items` of a save request ([{image, caption, hash}]) checked; a sentence names a bad one."""
    check_count(items, "captions")
    edits, seen = [], set()
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise ValidationError(
                f"Caption {i + 1} of the save is not an object with image, caption and hash."
            )
        image, text, digest = it.get("image"), it.get("caption"), it.get("hash", "")
        if not isinstance(image, str) or not image:
            raise ValidationError(f"Caption {i + 1} of the save names no image.")
        if not isinstance(digest, str) or not re.fullmatch(r"(|[0-9a-f]{64})", digest):
            raise ValidationError(f"The hash sent for {image[:80]!r} is not the one the editor was given.")
        if image in seen:
            raise ValidationError(f"{image[:80]!r} is in the save twice.")
        seen.add(image)
        edits.append(CaptionEdit(image, check_caption(text, image[:80]), digest))
    return edits


def _checked_image(folder: Folder, files: dict[str, Entry], image: str, rules: ImageRules) -> None:
    where = folder.path
    if "/" in image or "\\" in image or "\x00" in image or image in (".", ".."):
        raise PathNotAllowed(f"{image[:80]!r} is not a file name in {where}; it is not saved.")
    entry = files.get(image)
    if entry is None or rules.classify(image) != IMAGE:
        raise ValidationError(f"{image[:80]!r} is not an image of {where}; nothing was saved.")
    if entry.link is not None or entry.kind == "outside":
        raise PathNotAllowed(f"{where / image} is a link; the caption editor does not caption links.")
    if entry.kind != "file":
        raise PathNotAllowed(f"{where / image} is not a plain file; nothing was saved.")


def _new_content(
    folder: Folder, files: dict[str, Entry], edit: CaptionEdit, ext: str
) -> tuple[str, bytes | None]:
    """(caption file, what to write there, or None when it already says that); conflicts raise."""
    current = read_caption(folder, files, edit.image, ext)
    name = current.caption_file
    if current.problem and not current.hash:
        raise PathNotAllowed(current.problem + " Nothing was saved.")
    if current.hash != edit.hash:
        raise CaptionConflict(
            f"The caption {folder.path / name} changed on disk after the editor read it; nothing was saved. "
            "Reload the subset to see it, then edit again."
        )
    if current.problem:  # not UTF-8: the lines after the first cannot be kept safely
        raise ValidationError(current.problem + " Nothing was saved.")
    if not edit.text.strip():
        raise ValidationError(
            f"The caption of {edit.image} is empty; sd-scripts stops on an empty caption file. Write at "
            "least one tag (or delete the file by hand)."
        )
    if current.missing:
        return name, edit.text.encode("utf-8")
    raw, _ = _read_raw(folder, name)
    bom, line, rest = first_line(raw.decode("utf-8"))
    if line == edit.text:
        return name, None
    return name, (bom + edit.text + rest).encode("utf-8")


def save_captions(project: Project, key: str, edits: list[CaptionEdit]) -> SaveReport:
    """Write the edited first lines of one subset's captions: all checked first, then each written
    atomically inside the open subset folder; a conflict or a refused name saves nothing."""
    ext = check_extension(project.caption_extension)
    report = SaveReport()
    with project.open() as top, project.open_subset(top, key) as folder:
        files = _files(folder)
        rules = project.image_rules()
        planned: list[tuple[str, bytes]] = []
        targets: dict[str, str] = {}
        for edit in edits:
            _checked_image(folder, files, edit.image, rules)
            name, data = _new_content(folder, files, edit, ext)
            if name in targets:
                raise ValidationError(
                    f"{edit.image} and {targets[name]} share the caption {name}; save one of them."
                )
            targets[name] = edit.image
            if data is None:
                report.unchanged.append(edit.image)
            else:
                planned.append((name, data))
        for name, data in planned:
            _write(folder, name, data)
            report.written.append(name)
    return report


def _write(folder: Folder, name: str, data: bytes) -> None:
    try:
        folder.write_atomic(name, data)
    except OSError as exc:  # e.g. a folder planted under the caption's name meanwhile
        raise WorkbenchError(
            f"The caption {folder.path / name} could not be written ({exc.strerror or exc}); check that "
            "the folder is writable and the name is no folder."
        ) from None


def project_for(path: str | os.PathLike, roots, caption_extension: str = CAPTION_EXT) -> Project:
    """A Project read and written only inside `roots` (the routes pass paths.allowed_roots())."""
    return Project(os.fspath(path), Guard(list(roots)), check_extension(caption_extension))


def image_thumbnail(project: Project, key: str, image: str):
    """A capped JPEG preview (thumbnails.Thumbnail) of one plain image file of the subset."""
    from . import thumbnails

    with project.open() as top, project.open_subset(top, key) as folder:
        _checked_image(folder, _files(folder), image, project.image_rules())
        return thumbnails.thumbnail(folder, image)
