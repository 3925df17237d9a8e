"""A child process and everything it starts, as one thing: started in its own session, signalled and
waited for as a whole, and checked that none of it is left.

`accelerate launch` forwards no signals, so stopping only the process we started would leave the
trainer running. The tree is the child's process group plus the child's descendants (also one that
moved to another group). psutil's Process objects remember when their process started, so a PID
the system has since given to an unrelated process is never signalled, and the same code runs on
Linux and macOS; on Windows the group gets CTRL_BREAK and then every member is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence

import psutil

IS_WINDOWS = os.name == "nt"
POLL_SECONDS = 0.05
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone: it no longer runs, only waits to be reaped)."""
    try:
        return psutil.Process(pid).status() not in _GONE
    except psutil.NoSuchProcess:  # ZombieProcess is one too
        return False


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() not in _GONE
    except psutil.NoSuchProcess:  # ZombieProcess is one too
        return False
    except psutil.AccessDenied:  # exists, but not ours to inspect: it still runs
        return True


class ProcessTree:
    """A started child (`popen`) and its tree; `stop()` and `stop_leftovers()` leave none of it running."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self._known: set[psutil.Process] = set()
        try:
            self._root: psutil.Process | None = psutil.Process(popen.pid)
            self._known.add(self._root)
        except psutil.NoSuchProcess:  # gone (and reaped by someone else) already
            self._root = None

    @classmethod
    def start(cls, argv: Sequence[str | os.PathLike], *, cwd: str, env: dict) -> ProcessTree:
        """Start `argv` (no shell) in a new session (a new process group on Windows), both streams piped."""
        if IS_WINDOWS:  # pragma: no cover - not exercised on CI
            isolate: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
        else:
            isolate = {"start_new_session": True}
        popen = subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            **isolate,
        )
        return cls(popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    # ------------------------------------------------------------------ who is in the tree
    def _descendants(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        try:
            return self._root.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    def _group_members(self) -> list[psutil.Process]:
        """Processes in the child's process group (an orphaned trainer is no longer a descendant)."""
        if IS_WINDOWS:  # pragma: no cover - no process groups to scan there
            return []
        out = []
        for pid in psutil.pids():  # a cheap getpgid() per PID; a Process object only for members
            try:
                if os.getpgid(pid) != self.pid:
                    continue
                proc = psutil.Process(pid)
                if os.getpgid(pid) == self.pid:  # still ours now that its identity is taken
                    out.append(proc)
            except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
                continue
        return out

    def track(self) -> None:
        """Remember every current member, so it is still signalled after its parent is gone."""
        self._known.update(self._descendants())
        self._known.update(self._group_members())

    def alive(self) -> list[psutil.Process]:
        """Members still running (after tracking any new ones); [] when nothing of the tree is left."""
        self.popen.poll()
        self.track()
        return [p for p in self._known if _running(p)]

    # ------------------------------------------------------------------ signalling
    def signal(self, sig: int) -> None:
        """Send `sig` to the whole group at once and to every tracked member (identity checked)."""
        if not IS_WINDOWS and (self.popen.returncode is None or self._group_members()):
            # The group id is ours while its leader is unreaped or any member lives, so this hits
            # only our processes; it also reaches a worker forked since the last track().
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in list(self._known):
            try:
                proc.send_signal(sig)  # psutil refuses a PID that now belongs to another process
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass

    def wait_gone(self, timeout: float) -> bool:
        """Wait up to `timeout` s until the child has exited and no member runs; True when so."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.alive()
            if self.popen.returncode is not None and not left:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------ stopping
    def stop(self, grace_seconds: float) -> None:
        """Interrupt the tree, wait `grace_seconds`, terminate, wait, kill: nothing of it survives."""
        if IS_WINDOWS:  # pragma: no cover - not exercised on CI
            self._stop_windows(grace_seconds)
            return
        term_wait = min(max(grace_seconds, 0.5), 3.0)
        for sig, wait in ((signal.SIGINT, grace_seconds), (signal.SIGTERM, term_wait), (signal.SIGKILL, 5.0)):
            self.track()
            self.signal(sig)
            if self.wait_gone(wait):
                return

    def stop_leftovers(self) -> None:
        """After the child exited: stop whatever of its tree still runs (e.g. a trainer whose launcher died)."""
        if IS_WINDOWS or not self.alive():
            return
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 3.0)):
            self.signal(sig)
            if self.wait_gone(wait):
                return

    def _stop_windows(self, grace_seconds: float) -> None:  # pragma: no cover
        self.track()
        try:
            self.popen.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            self.popen.wait(grace_seconds)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        for proc in self.alive():
            try:
                proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        self.wait_gone(5.0)
