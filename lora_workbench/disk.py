"""A full disk is a sentence, and never half a file: which file could not be written, that the disk
(or the quota) is full, how much is free there, and what to do.

Every writer of the pack either writes through a temporary file renamed into place (`write_atomic`
and `write_json` here, `paths.ConfinedDir.write_atomic`, `dataset.confined.Folder.write_atomic`) or
runs inside `said_if_full`, which turns ENOSPC, EDQUOT and EFBIG into `errors.DiskFull`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFull

FULL_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None
)
# What sd-scripts (Python, numpy, safetensors) print when the disk fills while they write.
FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")
# torch.save (accelerate's states) says only this; with little space left it means a full disk.
WRITE_FAILED_TEXTS = ("PytorchStreamWriter failed writing file",)
LOW_SPACE = 256 * 1000 * 1000  # bytes


def full_in_log(lines: list[str], folder: str | os.PathLike) -> str:
    """What a trainer's log lines say about a full disk while it wrote into `folder` ("" if nothing)."""
    said = next((t for t in FULL_TEXTS for ln in lines if t in ln), "")
    if said:
        return said
    failed = next((t for t in WRITE_FAILED_TEXTS for ln in lines if t in ln), "")
    free = free_bytes(folder)
    return f"{failed}: file write failed" if failed and free is not None and free < LOW_SPACE else ""


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def free_bytes(path: str | os.PathLike) -> int | None:
    """The bytes free on the file system holding `path` (its nearest existing folder), or None."""
    p = Path(path)
    for folder in (p, *p.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def free_text(path: str | os.PathLike) -> str:
    """How much is free on the file system holding `path` ("1.2 GB free"), or "" when unknown."""
    free = free_bytes(path)
    return "" if free is None else f"{_size(free)} free"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def full_sentence(path: str | os.PathLike, reason: str = "", writer: str = "") -> str:
    """The sentence for a write to `path` that failed on a full disk (`writer`: who wrote, if not us)."""
    free = free_text(path)
    why = f" ({reason})" if reason else ""
    where = f"; {free} there" if free else ""
    what = f"{writer} could not write {path}" if writer else f"{path} could not be written"
    return (
        f"The disk is full: {what}{why}{where}. Free some space on that disk (or move the folder to a "
        f"disk with room), then run again."
    )


def disk_full(exc: OSError, path: str | os.PathLike) -> DiskFull:
    return DiskFull(full_sentence(path, exc.strerror or ""), exc.errno, str(path))


@contextmanager
def said_if_full(path: str | os.PathLike) -> Iterator[None]:
    """Turn a full-disk OSError raised inside into DiskFull naming `path`; anything else passes."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full(exc, path) from None
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str, *, append_to: bytes = b"") -> Path:
    """Write `path` through a temporary file in its folder, flushed to disk, then renamed into place:
    a reader sees the old file or the new one, never a part. `append_to`: old content to keep in front
    (an appended log). DiskFull when the disk is full; the temporary file is removed on any failure."""
    p = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = p.with_name(f".{p.name[:200]}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    with said_if_full(p):
        try:
            with open(tmp, "xb") as f:
                f.write(append_to + raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return p


def write_json(path: Path, data, *, prefix: str, **dump_options) -> None:
    """Write `data` as JSON (`dump_options` for json.dump) and a line break to `path` through a private
    temporary file (mkstemp: mode 0600, named `prefix`...`.tmp`) in its folder, flushed to disk, then
    renamed into place: a kill leaves the old file or the new one. The temporary file is removed on any
    failure; a full disk is the caller's to word (the settings file names the link it was given)."""
    import tempfile  # only here: importing the pack must stay cheap

    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, **dump_options)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # the new file is whole on disk before it replaces the old one
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
