"""Running git, venv and pip: argv lists only (never a shell), output read line by line into a log
file and a callback, and a cancel flag that stops the child (and its children) between lines.

`Runner` is what install.py calls; tests pass their own to stand in for pip.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import WorkbenchError

TAIL = 200


class InstallCancelled(WorkbenchError):
    """The user cancelled the install; what was built so far is kept and a new install continues it."""


@dataclass
class RunResult:
    returncode: int
    tail: list[str] = field(default_factory=list)  # the last lines of output

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def __call__(
        self,
        argv: list[str],
        *,
        cwd: Path | None = None,
        log: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult: ...


def run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    log: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run argv to the end (or until `cancel` is set: InstallCancelled); a missing program is rc 127."""
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # pip's lines as it prints them, not in blocks
        )  # in our process group: a Ctrl-C in the terminal stops pip with us
    except OSError as exc:
        return RunResult(127, [f"{argv[0]}: {exc.strerror or exc}"])
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read, args=(proc, lines), daemon=True)
    reader.start()
    tail: deque[str] = deque(maxlen=TAIL)
    sink = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115 - closed below
    try:
        _pump(proc, lines, tail, sink, on_line, cancel)
    except BaseException:
        _stop(proc)  # cancelled, interrupted or a failing callback: never leave pip running alone
        raise
    finally:
        if sink:
            sink.close()
    return RunResult(proc.wait(), list(tail))


def _read(proc: subprocess.Popen, lines: queue.Queue) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\r\n"))
    lines.put(None)


def _pump(proc, lines: queue.Queue, tail: deque, sink, on_line, cancel) -> None:
    while True:
        if cancel is not None and cancel.is_set():
            raise InstallCancelled("The install was cancelled; run it again to continue where it stopped.")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            return
        tail.append(line)
        if sink:
            sink.write(line + "\n")
        if on_line:
            on_line(line)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
