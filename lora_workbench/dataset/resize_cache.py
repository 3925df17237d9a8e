"""Train on resized copies instead of refusing images of the wrong size (wrong_size = "resize").

With buckets off sd-scripts needs every image at the training resolution. Rather than touch the
user's originals, each subset that has wrong-size images is mirrored into the project's cache:

    PROJECT/cache/resized/<W>x<H>/store/<content hash>.png      resized copies, keyed by content
    PROJECT/cache/resized/<W>x<H>/<images|regularization>/<subset>/   what sd-scripts reads:
        hard links to the store (resized) or to the originals (right size), captions copied

A copy is made once per image content and size and reused by every later run; the subset folder
is brought in line with the originals on each run (stale files removed, with their latent caches).
Resizing scales the image to cover W x H and crops the middle, like sd-scripts' own crop.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import WorkbenchError
from .confined import Entry, Folder, Guard
from .scan import REG_DIR, TRAIN_DIR, ProjectScan, SubsetScan, open_project

CACHE_DIR = "cache"
_METHOD = "cover-center-lanczos-v1"  # part of the content key: a new method never reuses old copies
CancelCheck = Callable[[], None] | None  # called before each image; raises to stop (ComfyUI's interrupt)


@dataclass
class ResizeReport:
    folders: dict[str, str] = field(default_factory=dict)  # original subset folder -> cache folder
    resized: int = 0  # images that needed a resized copy
    made: int = 0  # copies made this run (the rest were reused)

    def note(self) -> str:
        reused = self.resized - self.made
        return (
            f"Wrong-size images: {self.resized} trained from resized copies ({self.made} made, {reused} reused) "
            f"in {len(self.folders)} cache folder(s); the originals are unchanged."
        )


def cache_path(project_dir: str, resolution: tuple[int, int]) -> str:
    return os.path.join(project_dir, CACHE_DIR, "resized", f"{resolution[0]}x{resolution[1]}")


def wrong_size(s: SubsetScan, resolution: tuple[int, int]) -> list[str]:
    return [n for n, wh in s.sizes.items() if wh != tuple(resolution)]


def build(
    scan: ProjectScan,
    resolution: tuple[int, int],
    guard: Guard,
    subsets: list[SubsetScan],
    check_cancel: CancelCheck = None,
) -> ResizeReport:
    """Mirror each subset with wrong-size images into the cache; returns where each one went.
    `check_cancel` is called before each image and file: what it raises stops the build there, with
    every copy made so far whole (each is written to a temporary file and renamed)."""
    report = ResizeReport()
    check = check_cancel or _no_cancel
    w, h = resolution
    with open_project(scan.project_dir, guard) as top:
        base = _mkdirs(top, (CACHE_DIR, "resized", f"{w}x{h}"))
        with base, base.mkdir_open("store") as store:
            for s in subsets:
                if not wrong_size(s, resolution):
                    continue
                with _mkdirs(base, (REG_DIR if s.is_reg else TRAIN_DIR, s.dirname)) as dest:
                    _mirror(s, resolution, guard, (store, dest), report, scan.caption_extension, check)
                report.folders[s.folder] = str(dest.path)
    return report


def _mkdirs(folder: Folder, parts: tuple[str, ...]) -> Folder:
    current = folder.mkdir_open(parts[0])
    for part in parts[1:]:
        with current:
            current = current.mkdir_open(part)
    return current


def _no_cancel() -> None:
    return None


def _mirror(
    s,
    resolution,
    guard: Guard,
    folders: tuple[Folder, Folder],
    report: ResizeReport,
    cap_ext: str,
    check_cancel: Callable[[], None],
):
    store, dest = folders
    bad = set(wrong_size(s, resolution))
    wanted: dict[str, tuple[str, str]] = {}  # name in dest -> ("store"|"orig"|"caption", source name)
    with guard.open_dir(s.image_dir, "subset folder") as src:
        files = {e.name: e for e in src.entries()}
        for name in s.images:
            check_cancel()
            out_name = _free_name(name, name in bad, wanted)
            if name in bad:
                key = _store_copy(src, files[name], resolution, store, report)
                wanted[out_name] = ("store", key)
                report.resized += 1
            else:
                wanted[out_name] = ("orig", name)
            cap = _caption_of(name, files, cap_ext)
            if cap is not None:
                wanted[os.path.splitext(out_name)[0] + cap_ext] = ("caption", cap)
        _sync(dest, wanted, src, store, files, check_cancel)


def _free_name(name: str, resized: bool, taken: dict) -> str:
    stem, ext = os.path.splitext(name)
    out = stem + (".png" if resized else ext)
    if out in taken:
        out = f"{stem}_{ext.lstrip('.')}" + (".png" if resized else ext)
    return out


def _caption_of(image: str, files: dict[str, Entry], cap_ext: str) -> str | None:
    from .captions import candidates

    for name in candidates(image, cap_ext):
        if name in files and files[name].kind == "file":
            return name
    return None


def _store_copy(src: Folder, entry: Entry, resolution, store: Folder, report: ResizeReport) -> str:
    with src.open_file(entry) as f:
        data = f.read()
    digest = hashlib.sha256(data + f"|{resolution[0]}x{resolution[1]}|{_METHOD}".encode()).hexdigest()[:32]
    name = f"{digest}.png"
    st = store.lstat(name)
    if st is None or not stat.S_ISREG(st.st_mode):  # a planted link or folder is never reused
        if st is not None:
            _remove(store, name)
        store.write_atomic(name, _resized_png(data, resolution), durable=False)
        report.made += 1
    return name


def _resized_png(data: bytes, resolution: tuple[int, int]) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        fitted = ImageOps.fit(im, tuple(resolution), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    out = io.BytesIO()
    fitted.save(out, "PNG")
    return out.getvalue()


def _sync(
    dest: Folder,
    wanted: dict,
    src: Folder,
    store: Folder,
    files: dict[str, Entry],
    check_cancel: Callable[[], None] = _no_cancel,
) -> None:
    """Make `dest` hold exactly the wanted files (sd-scripts' latent caches of unchanged images stay)."""
    present = {e.name: e for e in dest.entries()}
    changed: set[str] = set()
    for name, (kind, source) in wanted.items():
        check_cancel()
        if kind == "caption":
            data = src.read_bytes(files[source], 1 << 20)
            if name not in present or dest.read_own_text(name) != data.decode("utf-8", "replace"):
                dest.write_atomic(name, data, durable=False)
            continue
        origin = store if kind == "store" else src
        if name in present and _same_file(dest, name, origin, source):
            continue
        _remove(dest, name)
        _link_or_copy(origin, source, dest, name, files.get(source))
        changed.add(os.path.splitext(name)[0])
    for name in present:
        if name in wanted or (name.endswith(".npz") and _npz_kept(name, wanted, changed)):
            continue
        _remove(dest, name)


def _remove(folder: Folder, name: str) -> None:
    """Remove a file of the cache; a folder in its place is the user's to clear."""
    try:
        folder.unlink(name, missing_ok=True)
    except (IsADirectoryError, PermissionError) as exc:
        raise WorkbenchError(
            f"{folder.path / name} is in the way of the resized copies ({exc.strerror}); remove it and run again."
        ) from None


def _npz_kept(npz: str, wanted: dict, changed: set[str]) -> bool:
    """A latent cache `<stem>_<W>x<H>_<arch>.npz` stays while its image is there and unchanged."""
    for name, (kind, _) in wanted.items():
        stem = os.path.splitext(name)[0]
        if kind != "caption" and npz.startswith(stem + "_") and stem not in changed:
            return True
    return False


def _same_file(dest: Folder, name: str, origin: Folder, source: str) -> bool:
    a, b = dest.lstat(name), origin.lstat(source)
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _link_or_copy(origin: Folder, source: str, dest: Folder, name: str, entry: Entry | None) -> None:
    if entry is None or entry.link is None:
        try:
            dest.hardlink_from(origin, source, name)
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    data_entry = entry or Entry(source, "file")
    with origin.open_file(data_entry) as f:
        dest.write_atomic(name, f.read(), durable=False)
