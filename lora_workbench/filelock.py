"""An exclusive lock on an open lock file, seen by every process (ComfyUI's server and the command
line): flock on POSIX, msvcrt.locking on Windows. Closing the descriptor releases it."""

from __future__ import annotations

import os


def lock(fd: int) -> None:
    """Take the exclusive lock on `fd`, waiting until it is free (an OSError of flock passes)."""
    if os.name == "nt":
        import msvcrt

        while True:  # LK_LOCK gives up after 10 s; a holder's work takes milliseconds, so keep trying
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on `fd` if it is free now: True when taken, False when another holds it
    (or it cannot be taken); never waits."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
