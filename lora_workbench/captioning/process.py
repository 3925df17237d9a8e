"""Run the tagger script as one watched, cancellable process tree and read its tqdm bar as progress.

The same `ProcessTree` and `OutputPump` as training: the child in its own session, both pipes read
on two threads in binary chunks (tqdm refreshes end in `\\r`), Cancel (a callable polled every round,
or `on_progress` raising ComfyUI's interrupt) stops the whole tree with SIGINT, SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..training.proctree import ProcessTree
from ..training.runner import OutputPump, child_env, error_summary, summarize_tail

# The script's bar: "100%|██████████| 3/3 [00:01<00:00,  2.00it/s]" (batches, no description).
BAR_RE = re.compile(r"(\d+)%\|[^|\r\n]*\|\s*(\d+)/(\d+)\s*\[")
_SPLIT_RE = re.compile(r"[\r\n]")
POLL_SECONDS = 0.2
MAX_LINES = 400


@dataclass
class Progress:
    """Batches done of the bar's total (0 of 0 until the bar shows), and the latest log line."""

    done: int = 0
    total: int = 0
    message: str = ""

    def text(self) -> str:
        if self.total:
            return f"tagging: batch {self.done}/{self.total}"
        return f"starting the tagger{': ' + self.message if self.message else ''}"


@dataclass
class Outcome:
    """How the script ended: its exit code (None: it could not start), cancelled or not, its last lines."""

    returncode: int | None
    cancelled: bool
    lines: list[str] = field(default_factory=list)

    def error(self) -> str:
        """The line that says what went wrong, and the last meaningful lines."""
        summary = error_summary(self.lines)
        tail = "\n".join(summarize_tail(self.lines, 12))
        return (summary or f"exit code {self.returncode}") + (f"\n\nLast log lines:\n{tail}" if tail else "")


class BarParser:
    """Text chunks in, progress out: split on \\r and \\n, bars counted, other lines kept."""

    def __init__(self) -> None:
        self.pending = ""
        self.progress = Progress()
        self.lines: deque[str] = deque(maxlen=MAX_LINES)

    def feed(self, text: str) -> bool:
        """Take a chunk; True when the progress changed."""
        parts = _SPLIT_RE.split(self.pending + text)
        self.pending = parts.pop()[-4096:]  # the unfinished segment waits for the rest ...
        changed = any([self._segment(p) for p in parts])
        return self._bar(self.pending) or changed  # ... but tqdm's latest refresh ends only at the next

    def _bar(self, seg: str) -> bool:
        bars = list(BAR_RE.finditer(seg))
        if not bars:
            return False
        done, total = int(bars[-1].group(2)), int(bars[-1].group(3))
        changed = (done, total) != (self.progress.done, self.progress.total)
        self.progress.done, self.progress.total = done, total
        return changed

    def flush(self) -> bool:
        rest, self.pending = self.pending, ""
        return self._segment(rest)

    def _segment(self, seg: str) -> bool:
        if BAR_RE.search(seg):
            return self._bar(seg)
        line = seg.strip()
        if not line:
            return False
        self.lines.append(line[:1000])
        self.progress.message = line[:200]
        return not self.progress.total


def run(
    argv: list[str],
    *,
    cwd: str,
    env: dict,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    grace_seconds: float = 3.0,
) -> Outcome:
    """Run `argv` (no shell) to its end or until cancelled; nothing of its tree is left running.

    `on_progress` runs on this thread; if it raises (ComfyUI's interrupt), the tree is stopped and
    the exception goes on.
    """
    try:
        tree = ProcessTree.start(argv, cwd=cwd, env=child_env(env))
    except (OSError, ValueError) as exc:
        return Outcome(None, False, [f"Could not start {argv[0]}: {getattr(exc, 'strerror', None) or exc}"])
    pump = OutputPump()
    pump.start(tree.popen)
    parser = BarParser()
    try:
        cancelled = _watch(tree, pump, parser, on_progress, should_cancel, grace_seconds)
        tree.popen.wait()
        tree.stop_leftovers()
    except BaseException:
        tree.stop(min(grace_seconds, 2.0))
        raise
    finally:
        pump.close()
    parser.flush()
    return Outcome(tree.popen.returncode, cancelled, list(parser.lines))


def _watch(
    tree: ProcessTree,
    pump: OutputPump,
    parser: BarParser,
    on_progress: Callable[[Progress], None] | None,
    should_cancel: Callable[[], bool] | None,
    grace_seconds: float,
) -> bool:
    """Rounds of read / cancel? / report until both pipes close (or the child is gone 3 s while a
    left-over holds them); True when cancelled."""
    exited_at = None
    while pump.open_streams:
        changed = _take(pump, parser)
        if should_cancel is not None and should_cancel():
            tree.stop(grace_seconds)
            return True
        if changed and on_progress is not None:
            on_progress(parser.progress)
        if tree.popen.poll() is not None:
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > 3.0:
                break
    return False


def _take(pump: OutputPump, parser: BarParser) -> bool:
    """Feed what came within one poll to the parser; True when the progress changed."""
    changed = False
    for _stream, text in pump.take(POLL_SECONDS):
        changed = parser.feed(text) or changed
    return changed
