"""A full disk, injected: writes that put a file of a given name into place fail with ENOSPC, as they
do when the disk fills (there is no tmpfs to fill in the unit tier). Every writer of the pack puts its
files into place with os.replace (after writing a temporary file), so failing there stands for a
write, an fsync or a rename that found no space."""

from __future__ import annotations

import errno
import fnmatch
import os


def fill_disk_for(monkeypatch, *names: str) -> list[str]:
    """From now on, os.replace onto a file whose name matches one of `names` (fnmatch patterns) fails
    with ENOSPC; returns the list of the attempts refused (their destination paths)."""
    refused: list[str] = []
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if any(fnmatch.fnmatch(os.path.basename(os.fsdecode(dst)), n) for n in names):
            refused.append(os.fsdecode(dst))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return refused


def temp_files(folder) -> list[str]:
    """The temporary files a writer left behind under `folder` (none, when it cleans up)."""
    return [os.path.join(d, f) for d, _dirs, files in os.walk(folder) for f in files if ".tmp" in f]
