"""Where a run writes, checked before sd-scripts starts.

A run writes into PROJECT/output/<name>-NNN/ (its files, sample/, the state folders, the LoRA files),
with TensorBoard on into PROJECT/logs/, and with latents cached to disk .npz files beside the images
of every subset. sd-scripts opens all of these by name and follows links, so a shared project holding
`output -> /elsewhere` would move the run's writes out of the allowed roots. From a workflow (allowed
roots given) the project is opened and checked, output/ and logs/ are opened or created without
following a link, the run folder is made inside that open folder, a resumed run folder may hold no
link at all, and every subset folder must lie inside the roots. The command line (the user's own
shell) follows links, and says where they lead.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .. import disk, paths
from ..errors import PathNotAllowed, ValidationError

OUTPUT = "output"
LOGS = "logs"
_CLI_HINT = "train from the command line, which follows links"

Roots = Sequence[str | os.PathLike] | None  # a workflow's allowed roots; None: the command line


def _open_project(project_dir: str | os.PathLike, roots: Sequence) -> paths.ConfinedDir:
    return paths.open_dir(project_dir, what="project folder", extra_roots=roots)


def _plain_folder(project: paths.ConfinedDir, name: str) -> paths.ConfinedDir:
    """PROJECT/<name>, opened (or made) without following a link; a sentence when it is a link."""
    try:
        return project.mkdir(name)
    except (PathNotAllowed, OSError) as exc:
        where = project.path / name
        if disk.is_full(exc):
            raise disk.disk_full(exc, where) from None
        target = f" (it leads to {os.path.realpath(where)})" if os.path.islink(where) else ""
        raise PathNotAllowed(
            f"The project's {name} folder {where} is a link or not a folder{target}; a run from a workflow "
            f"writes only into plain folders inside the allowed roots. Replace it with a plain folder, or "
            f"{_CLI_HINT}."
        ) from exc


def check_project(project_dir: str | os.PathLike, roots: Roots, *, tensorboard: bool) -> list[str]:
    """From a workflow: refuse a project whose output/ (or logs/, with TensorBoard) is a link or lies
    outside the roots. From the command line: the sentences saying where such links lead."""
    names = (OUTPUT, LOGS) if tensorboard else (OUTPUT,)
    if roots is None:
        notes = []
        for name in names:
            p = Path(project_dir) / name
            if p.is_symlink():
                notes.append(f"{p} is a link to {os.path.realpath(p)}; the run writes there.")
        return notes
    with _open_project(project_dir, roots) as project:
        for name in names:
            _plain_folder(project, name).close()
    return []


def _next_name(folder: paths.ConfinedDir, name: str) -> str:
    """`<name>-NNN` with NNN one above the highest existing entry's."""
    highest, prefix = 0, name + "-"
    with folder.scandir() as entries:
        for entry in entries:
            tail = entry.name[len(prefix) :]
            if entry.name.startswith(prefix) and tail.isdigit():
                highest = max(highest, int(tail))
    return f"{name}-{highest + 1:03d}"


def make_run_dir(project_dir: str | os.PathLike, name: str, roots: Roots) -> Path:
    """A new run folder PROJECT/output/<name>-NNN (an existing one is never reused). From a workflow
    it is made inside the output folder opened without following links; the command line follows."""
    with disk.said_if_full(Path(project_dir) / OUTPUT):
        if roots is None:
            output_root = Path(project_dir) / OUTPUT
            output_root.mkdir(parents=True, exist_ok=True)
            output = paths.open_dir(output_root, what="output folder", confined=False)
        else:
            with _open_project(project_dir, roots) as project:
                output = _plain_folder(project, OUTPUT)
        with output:
            for _ in range(1000):
                run = _next_name(output, name)
                try:
                    output.mkdir(run, exist_ok=False).close()
                except FileExistsError:  # another process took it: take the next number
                    continue
                return (Path(project_dir) / OUTPUT if roots is None else output.path) / run
    raise ValidationError(f"No free run folder name for {name} in {Path(project_dir) / OUTPUT}.")


def check_resumed_run(run_dir: Path) -> None:
    """From a workflow: a resumed run writes new states, samples and LoRA files into its folder by
    name, so the folder may hold nothing but plain folders and regular files."""
    for dirpath, dirnames, filenames in os.walk(run_dir, followlinks=False):
        for entry in [*dirnames, *filenames]:
            mode = os.lstat(os.path.join(dirpath, entry)).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                rel = os.path.relpath(os.path.join(dirpath, entry), run_dir)
                kind = "a link" if stat.S_ISLNK(mode) else "not a plain file or folder"
                raise PathNotAllowed(
                    f"The run folder {run_dir} holds {rel}, {kind}; a resumed run writes into that folder, "
                    f"so from a workflow it must hold none. Remove it, start a new run, or resume from the "
                    f"command line."
                )


def check_subset_folders(image_dirs: list[str], roots: Roots) -> None:
    """From a workflow, with latents cached to disk: every subset folder (where sd-scripts writes the
    .npz files) must resolve inside the allowed roots."""
    if roots is None:
        return
    for folder in image_dirs:
        try:
            paths.confine(folder, what="subset folder", extra_roots=roots)
        except PathNotAllowed as exc:
            raise PathNotAllowed(
                f"{exc} The trainer writes cached latents (.npz) there; turn cache_latents_to_disk off, or "
                f"{_CLI_HINT}."
            ) from None


def make_cache_folders(project_dir: str | os.PathLike, folders: Sequence[str], roots: Roots) -> list[str]:
    """musubi-tuner's caches (PROJECT/cache/musubi/<family>/<NN_subset>, one per dataset config table):
    from a workflow each is made (or reused) as a plain folder inside the project, a link on the way
    refused, as output/ is, since musubi writes there by name. From the command line: the sentences
    saying where such links lead.

    musubi opens each cache file by name (`<image>_<WxH>_<arch>.safetensors`, written with
    safetensors' save_file, which follows a link) and trains on every `*_<arch>.safetensors` the folder
    holds: a link planted there by a shared project would make it overwrite a file outside the roots or
    train on latents from outside the project, and a FIFO would hang it. From a workflow a cache folder
    may hold only regular files and folders."""
    project = Path(project_dir)
    if roots is None:
        on_the_way = dict.fromkeys(q for f in folders for q in _between(project, Path(f)))
        inside = [q for f in folders if os.path.isdir(f) for q in Path(f).iterdir()]
        return [
            f"{p} is a link to {os.path.realpath(p)}; the run caches there."
            for p in [*on_the_way, *inside]
            if p.is_symlink()
        ]
    with _open_project(project_dir, roots) as top:
        for folder in folders:
            _make_plain_path(top, _inside(project, Path(folder)))
    return []


def _between(project: Path, folder: Path) -> list[Path]:
    """The folders from the project (excluded) down to `folder` (included)."""
    return [
        project.joinpath(*_inside(project, folder)[:i]) for i in range(1, len(_inside(project, folder)) + 1)
    ]


def _inside(project: Path, folder: Path) -> tuple[str, ...]:
    try:
        parts = folder.relative_to(project).parts
    except ValueError:
        parts = ()
    if not parts or ".." in parts:
        raise PathNotAllowed(
            f"The cache folder {folder} is not inside the project {project}; caches stay in it."
        )
    return parts


def _make_plain_path(top: paths.ConfinedDir, parts: tuple[str, ...]) -> None:
    opened: list[paths.ConfinedDir] = []
    try:
        current = top
        for part in parts:
            current = _plain_folder(current, part)
            opened.append(current)
        _only_plain_entries(current)
    finally:
        for folder in reversed(opened):
            folder.close()


def _only_plain_entries(folder: paths.ConfinedDir) -> None:
    """A sentence for the first entry of an open cache folder that is neither a regular file nor a
    folder (a link, a FIFO, a device): musubi-tuner would read or write through it by name."""
    with folder.scandir() as entries:
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                continue
            where = folder.path / entry.name
            kind = f"a link to {os.path.realpath(where)}" if stat.S_ISLNK(mode) else "not a plain file"
            raise PathNotAllowed(
                f"The cache folder {folder.path} holds {entry.name}, {kind}; musubi-tuner writes and reads "
                f"its cache files there by name. Delete {where} (the cache is rebuilt), or {_CLI_HINT}."
            )
