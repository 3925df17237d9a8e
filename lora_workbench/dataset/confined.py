"""Reading and writing a dataset without leaving the allowed roots: open first, then use what was opened.

A `Guard` holds the allowed roots (None: the command line, which is not confined; links are followed
and noted). `Guard.open_dir(path)` resolves the path, checks it lies inside a root, then opens it by
walking from that root one component at a time with O_NOFOLLOW, so a folder swapped for a link after
the check is refused instead of followed. A `Folder` lists its entries without following links; a
link entry is resolved and checked before anything reads through it, and files are opened relative to
the folder's descriptor (O_NOFOLLOW), so what was checked is what is read or written.

Where the platform has no descriptor-relative calls (Windows), the same checks run on resolved paths
(a narrower race remains there).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import disk
from ..errors import PathNotAllowed, WorkbenchError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not hang the scan
_BINARY = getattr(os, "O_BINARY", 0)
HAVE_DIR_FD = (
    bool(_NOFOLLOW) and os.open in os.supports_dir_fd and os.scandir in os.supports_fd and os.name != "nt"
)


@dataclass
class Entry:
    """One name in a folder, classified without following links out of the roots."""

    name: str
    kind: str  # "file" | "dir" | "other" | "missing" (a dangling link) | "outside" (a link leaving the roots)
    link: str | None = None  # where a link resolves to; None for a plain entry
    size: int = 0
    mtime_ns: int = 0


@dataclass
class Guard:
    """The allowed roots, or None (unconfined: links are followed and listed in `followed`)."""

    roots: list[Path] | None = None
    followed: list[str] = field(default_factory=list)

    @property
    def confined(self) -> bool:
        return self.roots is not None

    def root_of(self, resolved: Path) -> Path | None:
        """The allowed root `resolved` lies in (None when unconfined or outside every root)."""
        for r in self.roots or ():
            if resolved == r or r in resolved.parents:
                return r
        return None

    def allows(self, resolved: Path) -> bool:
        return not self.confined or self.root_of(resolved) is not None

    def note_link(self, where: str, target: str) -> None:
        if not self.confined:
            self.followed.append(
                f"{where} is a link to {target}; followed (the command line is not confined)."
            )

    def open_dir(self, path: str | os.PathLike, what: str = "folder", create: bool = False) -> Folder:
        """Open a folder inside the roots; `create` makes missing components (inside the root only)."""
        resolved = Path(os.path.realpath(Path(path).expanduser()))
        if not self.confined:
            if create:
                resolved.mkdir(parents=True, exist_ok=True)
            return Folder(_open_plain_dir(resolved, what), resolved, self)
        root = self.root_of(resolved)
        if root is None:
            raise PathNotAllowed(f"The {what} {resolved} lies outside the allowed roots; it is not read.")
        if not HAVE_DIR_FD:
            if create:
                resolved.mkdir(parents=True, exist_ok=True)
            return Folder(None, resolved, self)
        fd = _walk(root, resolved.relative_to(root).parts, what, create)
        return Folder(fd, resolved, self)


def _open_plain_dir(path: Path, what: str) -> int | None:
    if not HAVE_DIR_FD:
        return None
    try:
        return os.open(path, os.O_RDONLY | _DIRECTORY)
    except OSError as exc:
        raise WorkbenchError(f"The {what} {path} cannot be opened ({exc.strerror}).") from None


def _walk(root: Path, parts: tuple[str, ...], what: str, create: bool) -> int:
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            nfd = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathNotAllowed(
                f"The {what} {root.joinpath(*parts)} changed while it was being opened (a part of it is now "
                f"a link or a file); it is not read."
            ) from None
        raise WorkbenchError(
            f"The {what} {root.joinpath(*parts)} cannot be opened ({exc.strerror})."
        ) from None
    return fd


class Folder:
    """An open folder inside the roots (a descriptor where the platform has them)."""

    def __init__(self, fd: int | None, path: Path, guard: Guard):
        self.fd = fd
        self.path = path  # resolved
        self.guard = guard

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ listing
    def entries(self) -> list[Entry]:
        """Every name in the folder, sorted, with its kind; links are resolved and checked, not opened."""
        out: list[Entry] = []
        with os.scandir(self.fd if self.fd is not None else self.path) as it:
            for e in it:
                out.append(self._classify(e))
        out.sort(key=lambda e: e.name)
        return out

    def _classify(self, e: os.DirEntry) -> Entry:
        if not e.is_symlink():
            st = e.stat(follow_symlinks=False)
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
            return Entry(e.name, kind, None, st.st_size, st.st_mtime_ns)
        text = os.readlink(e.name, dir_fd=self.fd) if self.fd is not None else os.readlink(self.path / e.name)
        target = Path(os.path.realpath(self.path / text))
        if not self.guard.allows(target):
            return Entry(e.name, "outside", str(target))
        try:
            st = os.stat(target)
        except OSError:
            return Entry(e.name, "missing", str(target))
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        return Entry(e.name, kind, str(target), st.st_size, st.st_mtime_ns)

    # ------------------------------------------------------------------ reading
    def subdir(self, entry: Entry, what: str = "folder") -> Folder:
        """Open a listed sub-folder (a link to a folder inside the roots is opened at its target)."""
        if entry.kind == "outside":
            raise PathNotAllowed(
                f"{self.path / entry.name} is a link to {entry.link}, outside the allowed roots."
            )
        if entry.link is not None:
            self.guard.note_link(str(self.path / entry.name), entry.link)
            return self.guard.open_dir(entry.link, what)
        if self.fd is None:
            return self.guard.open_dir(self.path / entry.name, what)
        try:
            fd = os.open(entry.name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _changed(self.path / entry.name, exc) from None
            raise
        return Folder(fd, self.path / entry.name, self.guard)

    def open_fd(self, entry: Entry) -> int:
        """A descriptor of a listed regular file (a link is opened at its checked target); close it."""
        if entry.kind == "outside":
            raise PathNotAllowed(
                f"{self.path / entry.name} is a link to {entry.link}, outside the allowed roots."
            )
        if entry.link is not None:
            self.guard.note_link(str(self.path / entry.name), entry.link)
            target = Path(entry.link)
            with self.guard.open_dir(target.parent, "folder") as parent:
                return parent.open_fd(Entry(target.name, "file"))
        fd = self._open(entry.name, os.O_RDONLY | _NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO or a device after the listing
            os.close(fd)
            raise OSError(errno.EINVAL, f"{self.path / entry.name} is not a regular file")
        return fd

    def open_file(self, entry: Entry) -> BinaryIO:
        """A listed regular file opened for reading (use it in a `with`)."""
        return os.fdopen(self.open_fd(entry), "rb")

    def read_bytes(self, entry: Entry, limit: int) -> bytes:
        fd = self.open_fd(entry)
        try:
            chunks, left = [], limit
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _open(self, name: str, flags: int, mode: int = 0o666) -> int:
        try:
            if self.fd is not None:
                return os.open(name, flags | _NOFOLLOW | _BINARY, mode, dir_fd=self.fd)
            path = self.path / name
            if path.is_symlink():
                raise OSError(errno.ELOOP, "is a link")
            return os.open(path, flags | _BINARY, mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _changed(self.path / name, exc) from None
            raise

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed); None when it is not there."""
        try:
            if self.fd is not None:
                return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            return os.lstat(self.path / name)
        except OSError:
            return None

    def exists(self, name: str) -> bool:
        return self.lstat(name) is not None

    # ------------------------------------------------------------------ writing
    def read_own_text(self, name: str, limit: int = 1 << 20) -> str | None:
        """A file of ours in this folder as text (None when absent); a link in its place is refused."""
        try:
            fd = self._open(name, os.O_RDONLY | _NONBLOCK)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise WorkbenchError(f"{self.path / name} is not a regular file; move it away.")
            return f.read(limit).decode("utf-8", errors="replace")

    def write_atomic(self, name: str, data: bytes, durable: bool = True) -> Path:
        """Write `name` through a fresh temporary file in this folder, then rename it into place
        (`durable`: fsync first, for files a crash must not leave empty; caches skip it)."""
        tmp = f".{name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        with disk.said_if_full(self.path / name):  # a full disk is a sentence naming the file
            fd = self._open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                self.replace(tmp, name)
            except BaseException:
                self.unlink(tmp, missing_ok=True)
                raise
        return self.path / name

    def replace(self, src: str, dst: str) -> None:
        if self.fd is not None:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            os.replace(self.path / src, self.path / dst)

    def unlink(self, name: str, missing_ok: bool = False) -> None:
        try:
            if self.fd is not None:
                os.unlink(name, dir_fd=self.fd)
            else:
                os.unlink(self.path / name)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir_open(self, name: str) -> Folder:
        """Make (if missing) and open a sub-folder of ours; a link in its place is refused."""
        try:
            if self.fd is not None:
                os.mkdir(name, dir_fd=self.fd)
            else:
                (self.path / name).mkdir()
        except FileExistsError:
            pass
        if self.fd is None:
            if (self.path / name).is_symlink():
                raise _changed(self.path / name, OSError(errno.ELOOP, "link"))
            return Folder(None, self.path / name, self.guard)
        try:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            raise _changed(self.path / name, exc) from None
        return Folder(fd, self.path / name, self.guard)

    def create_file(self, name: str) -> BinaryIO:
        """A new file of ours in this folder (refused when the name exists)."""
        return os.fdopen(self._open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb")

    def hardlink_from(self, src: Folder, src_name: str, name: str) -> None:
        """Hard-link `src/src_name` here as `name` (neither side follows a link)."""
        if self.fd is not None and src.fd is not None:
            os.link(src_name, name, src_dir_fd=src.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        else:
            os.link(src.path / src_name, self.path / name, follow_symlinks=False)


def _changed(path: Path, exc: OSError) -> WorkbenchError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return PathNotAllowed(
            f"{path} changed while it was being read (it is now a link or not a folder); it is not read."
        )
    return WorkbenchError(f"{path} cannot be opened ({exc.strerror or exc}).")
