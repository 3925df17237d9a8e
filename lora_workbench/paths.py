"""Where things are: environment, the settings file, and the roots untrusted paths are confined to.

Paths that arrive through a workflow or an HTTP route are untrusted: `confine()` resolves them
(following symlinks) and refuses anything outside the allowed roots. A name checked now may be
swapped for a symlink before it is used, so code that reads or writes an untrusted place opens
first and checks what was opened: `open_file()` (read a file), `open_dir()` -> `ConfinedDir`
(names used relative to the open folder, never through a link; `write_atomic` for a new file),
`makedirs()`. The CLI is the user's own shell and does not confine (`confined=False`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from . import disk, numbers, settings
from .errors import PathNotAllowed, ValidationError

ROOTS_ENV = "LORA_WORKBENCH_ROOTS"
SETTINGS_ENV = settings.SETTINGS_ENV
MAX_PATH_BYTES = 4095  # PATH_MAX less its NUL: longer paths fail in the OS with ENAMETOOLONG
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on every common filesystem)
CACHE_ENV = "LORA_WORKBENCH_CACHE_DIR"
log = logging.getLogger("lora_workbench")
SD_SCRIPTS, MUSUBI_TUNER = "sd-scripts", "musubi-tuner"  # the trainers' ids (training/backends)
COMFYUI_ROOT_FOLDERS = ("models", "input", "output", "lora-projects")  # of $COMFYUI_PATH, for the CLI

# Roots added at run time by the ComfyUI adapter (ComfyUI's own model/input/output folders).
_registered_roots: list[Path] = []

settings_path = settings.settings_path


def cache_dir() -> Path:
    """Where the pack keeps answers it can always recompute: $LORA_WORKBENCH_CACHE_DIR, else the
    user's cache folder ($XDG_CACHE_HOME or ~/.cache; ~/Library/Caches; %LOCALAPPDATA%)/lora-workbench."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lora-workbench"


def load_settings() -> dict:
    """The settings file, every known key type-checked (see settings.py); missing file = {}."""
    return settings.load()


def _setting_or_env(env: str, key: str, default: Path | None = None) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    value = settings.get(key)
    if value:
        return Path(value).expanduser()
    return default


def library_path() -> Path | None:
    """The model library: $SD_MODELS_PATH or settings `library`."""
    return _setting_or_env("SD_MODELS_PATH", "library")


def comfyui_path() -> Path | None:
    """ComfyUI's folder: $COMFYUI_PATH or settings `comfyui_path` (None when unset)."""
    return _setting_or_env("COMFYUI_PATH", "comfyui_path")


def a1111_path() -> Path:
    """A1111's folder: $A1111_PATH, settings, or the seed's default $HOME/stable-diffusion-webui."""
    return _setting_or_env("A1111_PATH", "a1111_path", Path.home() / "stable-diffusion-webui")


def forge_path() -> Path:
    """Forge's folder: $FORGE_PATH, settings, or the seed's default $HOME/stable-diffusion-webui-forge."""
    return _setting_or_env("FORGE_PATH", "forge_path", Path.home() / "stable-diffusion-webui-forge")


def trainer_spec(trainer: str):
    """A trainer's InstallSpec ("sd-scripts", "musubi-tuner"): its path and python keys, its managed
    install; a ValidationError sentence naming the known trainers for any other id."""
    from .trainer_env import pins  # the backends' tables, read only when a trainer's path is asked for

    return pins.spec(trainer)


def trainer_checkout(trainer: str) -> Path | None:
    """A trainer's checkout: its environment variable or settings key (KOHYA_SS_PATH / kohya_ss_path,
    MUSUBI_TUNER_PATH / musubi_tuner_path), else its managed install when one is recorded, else None."""
    spec = trainer_spec(trainer)
    explicit = _setting_or_env(spec.path_env, spec.path_setting)
    if explicit is not None:
        return explicit
    managed = managed_trainer_in_use(trainer)
    return managed.src if managed is not None else None


def trainer_python(trainer: str) -> Path | None:
    """A trainer's interpreter: its environment variable or settings key (KOHYA_PYTHON / kohya_python,
    MUSUBI_PYTHON / musubi_python); its managed install's when that is the checkout in use; else None
    (find one in the checkout)."""
    spec = trainer_spec(trainer)
    explicit = _setting_or_env(spec.python_env, spec.python_setting)
    if explicit is not None:
        return explicit
    managed = managed_trainer_in_use(trainer)
    return managed.python if managed is not None else None


def kohya_ss_path() -> Path:
    """A kohya_ss or sd-scripts checkout: $KOHYA_SS_PATH, settings, the managed trainer when one is
    recorded (`lora-workbench trainer install`), or the seed's default $HOME/kohya_ss."""
    found = trainer_checkout(SD_SCRIPTS)
    return found if found is not None else Path(trainer_spec(SD_SCRIPTS).default_path).expanduser()


def kohya_python() -> Path | None:
    """An explicit interpreter for sd-scripts: $KOHYA_PYTHON or settings `kohya_python`; the managed
    trainer's when it is the checkout in use (no KOHYA_SS_PATH); else None (find one in the checkout)."""
    return trainer_python(SD_SCRIPTS)


def musubi_tuner_path() -> Path | None:
    """A kohya musubi-tuner checkout: $MUSUBI_TUNER_PATH, settings `musubi_tuner_path`, the managed one
    when recorded (`lora-workbench trainer install --trainer musubi-tuner`); None when there is none."""
    return trainer_checkout(MUSUBI_TUNER)


def musubi_python() -> Path | None:
    """musubi-tuner's own interpreter (its pins differ from sd-scripts'): $MUSUBI_PYTHON, settings
    `musubi_python`, the managed install's when it is the checkout in use; else None (its venv)."""
    return trainer_python(MUSUBI_TUNER)


def managed_trainer(trainer: str = SD_SCRIPTS):
    """The trainer the pack installed and checked (trainer_env.layout.InUse), or None."""
    from .trainer_env import layout  # the record is read only when a trainer's path is asked for

    return layout.in_use(trainer)


def managed_trainer_in_use(trainer: str = SD_SCRIPTS):
    """The managed trainer when training uses it: one is recorded and neither the trainer's environment
    variable nor its settings key (KOHYA_SS_PATH / kohya_ss_path, MUSUBI_TUNER_PATH / musubi_tuner_path)
    names another checkout (those win); else None."""
    spec = trainer_spec(trainer)
    if _setting_or_env(spec.path_env, spec.path_setting) is not None:
        return None
    return managed_trainer(trainer)


def kohya_ss_gui_path() -> Path | None:
    """A kohya_ss GUI checkout to read presets from: $KOHYA_SS_GUI_PATH or settings `kohya_ss_gui_path`,
    else KOHYA_SS_PATH when that is a GUI checkout (it has presets/); None when there is none."""
    explicit = _setting_or_env("KOHYA_SS_GUI_PATH", "kohya_ss_gui_path")
    if explicit is not None:
        return explicit
    root = kohya_ss_path()
    return root if (root / "presets").is_dir() else None


def register_root(path: str | os.PathLike) -> None:
    """Allow a folder for untrusted paths (the ComfyUI adapter registers ComfyUI's own folders)."""
    p = Path(path)
    if p not in _registered_roots:
        _registered_roots.append(p)


def _saved_root(env: str, key: str) -> Path | None:
    """The library or ComfyUI's folder as a root: from the environment as it is; from the settings file
    only while it still resolves to itself (it is stored resolved). A saved value that now leads
    elsewhere, through a link re-pointed since (a `git pull`, a planted rename), is no root."""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    value = settings.get(key)
    if not value:
        return None
    try:
        saved = Path(value).expanduser()
        real = Path(os.path.realpath(saved))
    except (RuntimeError, OSError):  # ~nouser, a name the OS refuses
        saved, real = Path(value), None
    if real == saved:
        return saved
    if (key, value) not in _warned:
        _warned.add((key, value))
        log.warning(
            "lora-workbench: `%s` in %s is %s but now resolves to %s, so it is not an allowed root; if that "
            "is right, save it again: lora-workbench settings --set %s=%s",
            key,
            settings_path(),
            value,
            real,
            key,
            real,
        )
    return None


_warned: set[tuple[str, str]] = set()


def allowed_roots(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Every root an untrusted path may resolve into, resolved, without duplicates.

    $LORA_WORKBENCH_ROOTS (os.pathsep-separated), settings `roots`, the library and ComfyUI's models,
    input, output and lora-projects folders (a saved library or ComfyUI only while it resolves where
    it did when saved) and the folders the ComfyUI adapter registered.
    """
    candidates: list[Path] = []
    env = os.environ.get(ROOTS_ENV, "")
    candidates += [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    candidates += [Path(p).expanduser() for p in settings.get("roots") or []]
    library, comfyui = _saved_root("SD_MODELS_PATH", "library"), _saved_root("COMFYUI_PATH", "comfyui_path")
    if library is not None:
        candidates.append(library)
    later = [*_registered_roots, *(Path(p) for p in extra)]
    if comfyui is not None:  # never ComfyUI's own folder: custom_nodes/ holds code, user/ its settings
        candidates += _comfyui_roots(comfyui, _resolved([*candidates, *later]))
    return _resolved([*candidates, *later])


def _resolved(candidates: list[Path]) -> list[Path]:
    out: list[Path] = []
    for c in candidates:
        r = Path(os.path.realpath(c))
        if r not in out:
            out.append(r)
    return out


def _comfyui_roots(comfyui: Path, others: list[Path]) -> list[Path]:
    """ComfyUI's models, input, output and lora-projects folders, resolved. When that ComfyUI lies
    inside another root, a workflow or a shared project could plant one of them as a link (`input` ->
    `/`), so there a folder that is a link, or passes through one below ComfyUI's folder, is no root."""
    planted_here = is_within_roots(os.path.realpath(comfyui), others)
    out = []
    for name in COMFYUI_ROOT_FOLDERS:
        folder = comfyui / name
        real = Path(os.path.realpath(folder))
        if planted_here and real != Path(os.path.realpath(comfyui)) / name:
            _warn_once(
                ("comfyui", str(folder)),
                "lora-workbench: %s is a link (to %s) inside an allowed root, where a workflow or a shared "
                "project could have put it, so it is not an allowed root; add the folder it leads to to "
                "`roots` in %s if it is yours.",
                folder,
                real,
                settings_path(),
            )
            continue
        out.append(real)
    return out


def _warn_once(key: tuple[str, str], message: str, *args) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def is_within_roots(path: str | os.PathLike, roots: Iterable[Path]) -> bool:
    """True when the (already resolved) path lies inside one of the (resolved) roots."""
    p = Path(path)
    return any(_is_within(p, r) for r in roots)


def shown(text: str, limit: int = 120) -> str:
    """A value for an error message: repr'd (newlines visible) and cut to `limit` characters."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


def check_path_text(text: str, what: str = "path") -> None:
    """Refuse (ValidationError) a path the OS would reject: not encodable, or too long."""
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        raise ValidationError(
            f"The {what} {shown(text)} holds characters that cannot be a file name here."
        ) from None
    if len(raw) > MAX_PATH_BYTES:
        raise ValidationError(
            f"The {what} is {len(raw)} bytes long; paths may be at most {MAX_PATH_BYTES} bytes. "
            f"It starts with {shown(text[:60])}."
        )
    longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise ValidationError(
            f"A folder or file name in the {what} is {longest} bytes long; names may be at most "
            f"{MAX_NAME_BYTES} bytes. The {what} starts with {shown(text[:60])}."
        )


def expand_user(text: str, what: str = "path") -> Path:
    """`~` and `~user` expanded; a user this machine does not know is a ValidationError sentence
    (pathlib raises RuntimeError, which became a 500 on the routes)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text.split("/", 1)[0].split(os.sep, 1)[0]
        raise ValidationError(
            f"The {what} {shown(text)} starts with {shown(user)}, a user this machine does not know; "
            "give an absolute path."
        ) from None


def confine(
    value: str | os.PathLike,
    *,
    what: str = "path",
    must_exist: bool = False,
    extra_roots: Iterable[str | os.PathLike] = (),
) -> Path:
    """Resolve an untrusted path and return it only if it lies inside an allowed root.

    Relative paths are taken relative to the first allowed root. Symlinks are resolved before the
    check, so a link that escapes a root is refused like `..` is. The answer is only a name: what
    is opened by that name later may have been swapped in between, so code that reads or writes
    untrusted places opens with `open_file` / `open_dir` below, which check what was opened.
    """
    text = os.fspath(value) if not isinstance(value, str) else value
    text = text.strip()
    if not text:
        raise PathNotAllowed(f"The {what} is empty; give a folder inside one of the allowed roots.")
    if "\x00" in text:
        raise PathNotAllowed(f"The {what} contains a NUL character.")
    check_path_text(text, what)
    roots = allowed_roots(extra_roots)
    if not roots:
        raise PathNotAllowed(
            f"No allowed roots are configured, so the {what} {shown(text)} cannot be used from a workflow. "
            f"Set {ROOTS_ENV} (folders separated by '{os.pathsep}') or `roots` in {settings_path()}."
        )
    p = expand_user(text, what)
    if not p.is_absolute():
        p = roots[0] / p
    try:
        resolved = Path(os.path.realpath(p))
    except OSError as exc:  # a link swapped for a file while it was being resolved
        raise PathNotAllowed(
            f"The {what} {shown(text)} changed while it was resolved ({exc.strerror})."
        ) from None
    if not is_within_roots(resolved, roots):
        raise PathNotAllowed(outside_roots_message(what, text, resolved, roots))
    if must_exist and not os.path.lexists(resolved):
        raise PathNotAllowed(f"The {what} {resolved} does not exist.")
    return resolved


PROJECTS_FOLDER = "lora-projects"  # beside ComfyUI's input folder: a root out of the box
_ROOTS_NAMED = 5


def top_roots(roots: Iterable[Path]) -> list[Path]:
    """The roots that lie inside no other root (ComfyUI's models/input/output fold into ComfyUI)."""
    roots = list(roots)
    return [r for r in roots if not any(o != r and _is_within(r, o) for o in roots)]


def outside_roots_message(what: str, text: str, resolved: Path, roots: Iterable[Path]) -> str:
    """The refusal of a path outside the roots: the top-level roots (at most five named), the one
    line that allows it and where it goes, and the folder that is a root out of the box."""
    top = top_roots(roots)
    listed = ", ".join(str(r) for r in top[:_ROOTS_NAMED])
    if len(top) > _ROOTS_NAMED:
        listed += f" and {len(top) - _ROOTS_NAMED} more"
    comfy = comfyui_path()
    projects = (
        comfy / PROJECTS_FOLDER if comfy else f"ComfyUI's {PROJECTS_FOLDER} folder (beside its input folder)"
    )
    line = json.dumps({"roots": [str(resolved)]}, ensure_ascii=False)[1:-1]
    return (
        f"The {what} {shown(text)} resolves to {resolved}, outside the allowed roots ({listed}). "
        f"Put it in {projects}, or allow it with the line `{line}` in {settings_path()} "
        f"(or add it to {ROOTS_ENV})."
    )


# --------------------------------------------------------------------------- open, then check
# Checking a name and opening it later is a race: the file or a folder on its way can be swapped
# for a symlink in between. These helpers open first (no-follow where the OS allows) and then
# check what was opened: its real path (from the open descriptor) must lie inside the roots.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as "img.png" must not block the open
# Folders opened as descriptors and names used relative to them (POSIX); Windows falls back to
# names checked with lstat right before use.
DIR_FDS = (
    os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd and bool(O_NOFOLLOW and O_DIRECTORY)
)
_PROC_FD = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else None


def opened_path(fd: int, hint: str | os.PathLike) -> Path | None:
    """The real path of what `fd` refers to, or None when it cannot be told for sure.

    Linux reads /proc/self/fd; elsewhere the real path of `hint` counts only if it is the very
    same file (device and inode) as the descriptor.
    """
    if _PROC_FD is not None:
        try:
            real = os.readlink(f"{_PROC_FD}/{fd}")
        except OSError:
            real = None
        if real is not None:
            return None if real.endswith(" (deleted)") or not real.startswith("/") else Path(real)
    real = os.path.realpath(hint)
    try:
        same = os.path.samestat(os.stat(real), os.fstat(fd))
    except OSError:
        return None
    return Path(real) if same else None


def check_opened(fd: int, hint: str | os.PathLike, roots: Iterable[Path], what: str = "path") -> Path:
    """The real path of the open `fd` if it lies inside `roots`, else PathNotAllowed (fd left open)."""
    roots = list(roots)
    real = opened_path(fd, hint)
    if real is None or not is_within_roots(real, roots):
        listed = ", ".join(str(r) for r in roots)
        raise PathNotAllowed(
            f"The {what} {hint} changed while it was opened or lies outside the allowed roots ({listed}); "
            "it was not used."
        )
    return real


def _open_checked(value, what: str, flags: int, confined: bool, extra_roots) -> tuple[int, Path]:
    """Open a path (confined: its resolved form, no-follow) and return (fd, real path)."""
    if confined:
        target = confine(value, what=what, extra_roots=extra_roots)
        flags |= O_NOFOLLOW  # the resolved path has no link left; one now is a swap
    else:
        target = expand_user(os.fspath(value), what)
        check_path_text(str(target), what)
    try:
        fd = os.open(target, flags | O_CLOEXEC | O_NONBLOCK)
    except FileNotFoundError:
        raise FileNotFoundError(f"The {what} {target} does not exist.") from None
    except OSError as exc:
        raise PathNotAllowed(f"The {what} {target} cannot be opened ({exc.strerror}).") from None
    try:
        if confined:
            real = check_opened(fd, target, allowed_roots(extra_roots), what)
        else:
            real = opened_path(fd, target) or Path(os.path.realpath(target))
    except BaseException:
        os.close(fd)
        raise
    return fd, real


class ConfinedFile:
    """A regular file opened for reading and checked (see `open_file`); a context manager."""

    def __init__(self, fd: int, path: Path):
        self.fd = fd
        self.path = path  # its real path when it was opened
        self.size = os.fstat(fd).st_size

    def read(self, limit: int | None = None) -> bytes:
        """The whole file; ValidationError when it is bigger than `limit` bytes."""
        if limit is not None and self.size > limit:
            raise ValidationError(f"{self.path} is {self.size} bytes, more than the {limit} allowed here.")
        chunks, total = [], 0
        while True:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if limit is not None and total > limit:
                raise ValidationError(f"{self.path} grew past the {limit} bytes allowed here.")
            chunks.append(chunk)

    def read_tail(self, size: int) -> bytes:
        """At most the last `size` bytes (a log's end without reading the rest)."""
        os.lseek(self.fd, max(0, self.size - size), os.SEEK_SET)
        chunks, left = [], size
        while left > 0:
            chunk = os.read(self.fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def read_json(self, limit: int, what: str = "JSON file"):
        """The file parsed as JSON: its size (fstat, when opened) is checked against `limit` before a byte
        is read; a ValidationError sentence when too big, not UTF-8, not JSON or nested too deep."""
        if self.size > limit:
            raise ValidationError(
                f"The {what} {self.path} is larger than {_size_text(limit)}; it is not a {what}."
            )
        raw = self.read(limit)
        try:
            # 1e-400 stays text, which the reader's check of that value refuses by name (not 0.0)
            return json.loads(raw.decode("utf-8"), parse_float=numbers.float_or_literal)
        except UnicodeDecodeError:
            raise ValidationError(f"The {what} {self.path} is not UTF-8 text.") from None
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"The {what} {self.path} is not valid JSON ({exc.msg} at line {exc.lineno})."
            ) from None
        except (ValueError, RecursionError):
            raise ValidationError(
                f"The {what} {self.path} is not JSON this can read (nested too deep, or a number too long)."
            ) from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ConfinedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_file(
    value: str | os.PathLike,
    *,
    what: str = "file",
    confined: bool = True,
    extra_roots: Iterable[str | os.PathLike] = (),
) -> ConfinedFile:
    """Open an untrusted file for reading, then check what was opened.

    With `confined` (workflows, HTTP routes) the path is confined, opened with no-follow, and the
    descriptor's real path must lie inside the allowed roots; a file swapped for a symlink in
    between is refused (PathNotAllowed). Only regular files open: a FIFO, socket or device planted
    under an image's name is refused without blocking. `confined=False` (the CLI) follows links.

        with paths.open_file(request_path, what="sample image") as f:
            data = f.read(limit=64 << 20)
    """
    fd, real = _open_checked(value, what, os.O_RDONLY, confined, extra_roots)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathNotAllowed(f"The {what} {real} is not a regular file.")
    return ConfinedFile(fd, real)


def _size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n >> 10} KiB" if n % 1024 == 0 else f"{n} bytes"


def read_json(
    value: str | os.PathLike,
    *,
    what: str = "JSON file",
    limit: int = 1 << 20,
    confined: bool = False,
    extra_roots: Iterable[str | os.PathLike] = (),
):
    """A JSON file of at most `limit` bytes, parsed: a regular file only (a FIFO does not block), and a
    ValidationError sentence when it is too big, not UTF-8, not JSON or nested too deep to read."""
    with open_file(value, what=what, confined=confined, extra_roots=extra_roots) as f:
        return f.read_json(limit, what)


def open_dir(
    value: str | os.PathLike,
    *,
    what: str = "folder",
    confined: bool = True,
    extra_roots: Iterable[str | os.PathLike] = (),
) -> ConfinedDir:
    """Open a folder, then check what was opened (see `open_file`); returns a ConfinedDir.

    Names inside it are then used relative to the open folder with no-follow, so swapping the
    folder (or a file in it) for a symlink after the check cannot redirect a read or a write.

        with paths.open_dir(project, what="project folder") as d:
            d.write_atomic("dataset.toml", text)         # temp file + rename, inside that folder
            with d.subdir("images") as images: ...        # refuses a symlinked images/
    """
    if not DIR_FDS:
        real = confine(value, what=what, extra_roots=extra_roots) if confined else None
        real = real or Path(os.path.realpath(expand_user(os.fspath(value), what)))
        if not real.is_dir():
            raise PathNotAllowed(f"The {what} {real} is not a folder.")
        return ConfinedDir(None, real, what)
    fd, real = _open_checked(value, what, os.O_RDONLY | O_DIRECTORY, confined, extra_roots)
    return ConfinedDir(fd, real, what)


def makedirs(
    value: str | os.PathLike,
    *,
    what: str = "folder",
    confined: bool = True,
    extra_roots: Iterable[str | os.PathLike] = (),
) -> ConfinedDir:
    """Create a folder and its missing parents, each through the descriptor of the one above it.

    The deepest existing ancestor is opened and checked like `open_dir`; every missing part below it
    is made and opened without following links, so a parent swapped for a symlink meanwhile is
    refused instead of created through. Returns the folder, open.
    """
    target = confine(value, what=what, extra_roots=extra_roots) if confined else Path(os.path.abspath(value))
    missing: list[str] = []
    base = target
    while not os.path.isdir(base) and base.parent != base:
        missing.insert(0, base.name)
        base = base.parent
    d = open_dir(base, what=what, confined=confined, extra_roots=extra_roots)
    try:
        for name in missing:
            child = d.mkdir(name)
            d.close()
            d = child
    except BaseException:
        d.close()
        raise
    return d


class ConfinedDir:
    """An open folder; every name is one component used relative to it, never following a link.

    `fd` is None where the OS has no directory descriptors (Windows): names are then joined to
    `path` and checked with lstat right before use (a best effort, not race-free).
    """

    def __init__(self, fd: int | None, path: Path, what: str = "folder"):
        self.fd = fd
        self.path = path  # its real path when it was opened
        self.what = what

    # ------------------------------------------------------------------ names
    def name(self, name: str) -> str:
        """`name` if it is one plain component (no separator, not . or .., no NUL), else ValidationError."""
        try:
            too_long = len(os.fsencode(name)) > MAX_NAME_BYTES
        except UnicodeEncodeError:
            too_long = True
        bad = (
            too_long
            or name in ("", ".", "..")
            or "\x00" in name
            or os.sep in name
            or (os.altsep is not None and os.altsep in name)
        )
        if bad:
            raise ValidationError(f"{shown(name)} is not a single file or folder name inside {self.path}.")
        return name

    def _at(self, name: str) -> dict:
        return {"dir_fd": self.fd} if self.fd is not None else {}

    def _p(self, name: str) -> str:
        name = self.name(name)
        return name if self.fd is not None else str(self.path / name)

    # ------------------------------------------------------------------ reading
    def lstat(self, name: str) -> os.stat_result | None:
        """lstat of the entry (a link is not followed); None when it does not exist."""
        try:
            return os.stat(self._p(name), follow_symlinks=False, **self._at(name))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open_file(self, name: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        """A descriptor for the entry, never through a link; reading opens regular files only."""
        p = self._p(name)
        if self.fd is None and os.path.islink(p):
            raise PathNotAllowed(f"{self.path / name} is a symbolic link; it was not used.")
        try:
            fd = os.open(p, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode, **self._at(name))
        except OSError as exc:
            if exc.errno == errno.ELOOP or (O_NOFOLLOW and exc.errno == errno.EMLINK):
                raise PathNotAllowed(f"{self.path / name} is a symbolic link; it was not used.") from None
            raise
        if flags & (os.O_WRONLY | os.O_RDWR) == 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PathNotAllowed(f"{self.path / name} is not a regular file; it was not read.")
        return fd

    def read_bytes(self, name: str, limit: int | None = None) -> bytes:
        with ConfinedFile(self.open_file(name), self.path / name) as f:
            return f.read(limit)

    def read_text(self, name: str, limit: int | None = None, encoding: str = "utf-8") -> str:
        return self.read_bytes(name, limit).decode(encoding)

    def read_tail(self, name: str, size: int) -> bytes:
        """At most the last `size` bytes of a regular file in this folder (never through a link)."""
        with ConfinedFile(self.open_file(name), self.path / name) as f:
            return f.read_tail(size)

    def read_json(self, name: str, limit: int, what: str = "JSON file"):
        """A JSON file in this folder, opened without following a link, a regular file only, its size
        checked before it is read (see `ConfinedFile.read_json`)."""
        with ConfinedFile(self.open_file(name), self.path / name) as f:
            return f.read_json(limit, what)

    def scandir(self):
        """os.scandir of the open folder (entry.path is the bare name when a descriptor is used)."""
        return os.scandir(self.fd if self.fd is not None else self.path)

    def subdir(self, name: str, what: str | None = None) -> ConfinedDir:
        """A folder inside this one, opened without following a link (a symlinked folder is refused)."""
        label = what or f"folder {name}"
        p = self._p(name)
        if self.fd is None:
            if os.path.islink(p) or not os.path.isdir(p):
                raise PathNotAllowed(f"{self.path / name} is not a plain folder (a link?); it was not used.")
            return ConfinedDir(None, self.path / name, label)
        try:
            fd = os.open(p, os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            st = self.lstat(name)
            kind = "a symbolic link" if st is not None and stat.S_ISLNK(st.st_mode) else exc.strerror
            raise PathNotAllowed(
                f"{self.path / name} is not a plain folder ({kind}); it was not used."
            ) from None
        return ConfinedDir(fd, self.path / name, label)

    # ------------------------------------------------------------------ writing
    def write_atomic(self, name: str, data: bytes | str, mode: int = 0o644) -> Path:
        """Write `name` in this folder: a new temp file (O_EXCL, no-follow), fsync, rename over `name`.

        A symlink planted at `name` is replaced, never written through; nothing outside the folder
        is touched; the temp file is removed when anything fails.
        """
        name = self.name(name)
        raw = data.encode("utf-8") if isinstance(data, str) else data
        tmp = f".{name[:200]}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        with disk.said_if_full(self.path / name):  # a full disk is a sentence naming the file
            fd = self.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(raw)
                    f.flush()
                    os.fsync(f.fileno())
                self.rename(tmp, name, replace=True)
            except BaseException:
                self.unlink(tmp, missing_ok=True)
                raise
        return self.path / name

    def rename(self, src: str, dst: str, replace: bool = False) -> None:
        """Rename an entry inside this folder (a link is renamed, not followed).

        Without `replace` an existing `dst` is refused (FileExistsError) before anything moves.
        """
        s, d = self._p(src), self._p(dst)
        if not replace and self.lstat(dst) is not None:
            raise FileExistsError(errno.EEXIST, "already exists", str(self.path / dst))
        if self.fd is None:
            os.replace(s, d)
        else:
            os.replace(s, d, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str, missing_ok: bool = False) -> None:
        try:
            os.unlink(self._p(name), **self._at(name))
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, name: str, exist_ok: bool = True) -> ConfinedDir:
        """Create (or, with exist_ok, reuse) a plain sub-folder and open it."""
        try:
            os.mkdir(self._p(name), **self._at(name))
        except FileExistsError:
            if not exist_ok:
                raise
        return self.subdir(name)

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ConfinedDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
