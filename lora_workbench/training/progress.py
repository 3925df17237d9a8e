"""Parse kohya's trainers' console output (stdout and stderr) into progress events, incrementally.

sd-scripts writes its tqdm `steps:` bar to stderr with `\\r` refreshes and no newline, rich log
records to stderr (or to stdout with --console_log_simple), and `epoch N/M` / `saving checkpoint:`
to stdout. musubi-tuner's training loop prints the same (`steps:` bar with `avr_loss`, `total
optimization steps`, `epoch N/M`, `saving checkpoint:`, `model saved.`), its records in logging's
plain `INFO:name:message` form. Records can be glued to a bar with no separator, so each stream is
split on both `\\r` and `\\n` and searched, never anchored.

A `count` parser (a run's other steps: caching latents, caching text-encoder outputs, converting)
reads any tqdm bar instead, totalled (`3/12`) or not (`5it`), as "count" events without a loss.
Pure: no I/O, no threads; the runner feeds it text.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

# The training bar. `(?<![\w ])` keeps `validation steps:` (and any other "... steps:" desc) out;
# tqdm starts every refresh with \r, so the training bar always begins a segment.
STEP_RE = re.compile(
    r"(?<![\w ])steps:\s*(?P<pct>\d+)%\|[^|\r\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[0-9:]+)<(?P<remaining>[0-9:?]+),\s*(?P<rate>[0-9.?]+)\s*(?P<unit>s/it|it/s)"
    r"(?P<postfix>(?:,\s*[^\]=,\r\n]+=[^\],\r\n]*)*)\]"
)
POSTFIX_RE = re.compile(r",\s*([^=,\]]+)=([^,\]]*)")
# Any tqdm bar (labelled or not): removed from a segment before it is treated as a log line.
ANY_BAR_RE = re.compile(
    r"(?:[^\r\n|:]*:\s*)?\s*(?:\d+%\|[^|\r\n]*\|\s*[\d.]+[kMG]?/[\d.?]+[kMG]?|\d+it)\s*\[[^\]\r\n]*\]\s?"
)
TOTAL_RE = re.compile(r"total optimization steps[^:\n]*:\s*(\d+)")
EPOCHS_RE = re.compile(r"num epochs[^:\n]*:\s*(\d+)")
EPOCH_RE = re.compile(r"^\s*epoch (\d+)/(\d+)\s*$")
SAVED_RE = re.compile(r"saving checkpoint:\s*(.+?)\s*$")
MODEL_SAVED_RE = re.compile(r"\bmodel saved\.")
SAMPLE_RE = re.compile(r"generating sample images at step[^:\n]*:\s*(\d+)")
NO_DATA_RE = re.compile(r"No\s+data\s+found")
# A rich record: "[date time] LEVEL    message    file.py:NNN" (date blank when unchanged).
RECORD_RE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?\s*(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+"
    r"(?P<msg>.*?)(?:\s{2,}[\w.-]+\.py:\d+)?\s*$"
)
# logging.basicConfig's record (musubi-tuner): "LEVEL:logger.name:message".
PLAIN_RECORD_RE = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]*:(?P<msg>.*?)\s*$")
# Any tqdm bar, for a count step: totalled ("desc: 25%|##  | 3/12 [00:01<00:03, 2.9it/s]") or not
# ("5it [00:03, 1.50it/s]"). tqdm starts every refresh with \r, so a bar begins a segment.
COUNT_RE = re.compile(
    r"(?:\d+%\|[^|\r\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*\[(?P<elapsed>[0-9:]+)<(?P<remaining>[0-9:?]+),"
    r"|(?<![\w.])(?P<n2>\d+)it\s*\[(?P<elapsed2>[0-9:]+),)"
    r"\s*(?P<rate>[0-9.?]+)\s*(?P<unit>s/it|it/s)[^\]\r\n]*\]"
)
ERROR_RE = re.compile(
    r"^(Traceback \(most recent call last\):|[\w.]*(Error|Exception|Interrupt)\b.*|.*\bERROR\b.*|error: .*)$"
)

_SPLIT_RE = re.compile(r"[\r\n]")
MAX_PENDING = 1 << 20


@dataclass
class ProgressEvent:
    """One thing sd-scripts reported.

    kind: "step" (step, total, loss, rate, elapsed, remaining, it_per_s), "count" (step, total when
    the bar has one, rate, elapsed, remaining, it_per_s: a count parser's bar), "total" (total), "epochs"
    (epochs, from the banner), "epoch" (epoch, epochs), "saved" (path), "model_saved", "sample"
    (step; sd-scripts does not print sample paths), "no_data" (text), "error_line" (text), and with
    `emit_lines=True` "line" (text) for every log line that is not a bar refresh.
    """

    kind: str
    stream: str = "stderr"
    step: int | None = None
    total: int | None = None
    loss: float | None = None  # avr_loss, None before the first postfix
    rate: str | None = None  # as printed: "1.33s/it" or "4.20it/s"
    it_per_s: float | None = None
    elapsed: float | None = None  # seconds, from the bar
    remaining: float | None = None  # seconds, None while tqdm shows "?"
    epoch: int | None = None
    epochs: int | None = None
    path: str | None = None
    text: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def hms_to_seconds(value: str) -> float | None:
    """tqdm's `MM:SS` / `H:MM:SS` to seconds; None for `?`."""
    if not value or "?" in value:
        return None
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + float(part)
    return total


def parse_loss(value: str) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return None


def clean_record(line: str) -> str:
    """A log record without its time, logger and file:line columns ("INFO message"), rich or plain
    logging's; other lines stripped."""
    m = RECORD_RE.match(line) or PLAIN_RECORD_RE.match(line.strip())
    if m:
        msg = re.sub(r"\s{2,}", " ", m.group("msg").strip())
        return f"{m.group('level')} {msg}".rstrip()
    return line.rstrip()


def is_error_line(line: str) -> bool:
    return bool(ERROR_RE.match(line.strip()))


def step_event(m: re.Match, stream: str) -> ProgressEvent:
    post = {k.strip(): v for k, v in POSTFIX_RE.findall(m.group("postfix") or "")}
    rate_num = m.group("rate")
    unit = m.group("unit")
    it_per_s = None
    if rate_num and "?" not in rate_num:
        r = float(rate_num)
        it_per_s = r if unit == "it/s" else (1.0 / r if r > 0 else None)
    loss = parse_loss(post["avr_loss"]) if "avr_loss" in post else None
    return ProgressEvent(
        kind="step",
        stream=stream,
        step=int(m.group("n")),
        total=int(m.group("total")),
        loss=loss,
        rate=f"{rate_num}{unit}",
        it_per_s=it_per_s,
        elapsed=hms_to_seconds(m.group("elapsed")),
        remaining=hms_to_seconds(m.group("remaining")),
    )


def count_event(m: re.Match, stream: str) -> ProgressEvent:
    """A count step's bar: how far (n, of total when it has one) and how fast; never a loss."""
    rate_num, unit = m.group("rate"), m.group("unit")
    it_per_s = None
    if "?" not in rate_num:
        r = float(rate_num)
        it_per_s = r if unit == "it/s" else (1.0 / r if r > 0 else None)
    totalled = m.group("n") is not None
    return ProgressEvent(
        kind="count",
        stream=stream,
        step=int(m.group("n") if totalled else m.group("n2")),
        total=int(m.group("total")) if totalled else None,
        rate=f"{rate_num}{unit}",
        it_per_s=it_per_s,
        elapsed=hms_to_seconds(m.group("elapsed") if totalled else m.group("elapsed2")),
        remaining=hms_to_seconds(m.group("remaining")) if totalled else None,
    )


BARS = {"train": (STEP_RE, step_event), "count": (COUNT_RE, count_event)}


class ProgressParser:
    """Incremental parser; feed it decoded text as it arrives, per stream, in any chunk sizes.

    A bar refresh is reported as soon as its closing `]` arrives (tqdm writes no newline after it);
    other lines are reported when their `\\r`/`\\n` arrives, or on `flush()`. Feeding the same text in
    any chunking gives the same events in the same order. `bar` says which bars are progress: "train"
    (the `steps:` bar with its loss) or "count" (any bar, a run's other steps).
    """

    def __init__(self, emit_lines: bool = False, bar: str = "train"):
        self.emit_lines = emit_lines
        self._bar_re, self._bar_event = BARS[bar]
        self._pending: dict[str, str] = {}  # stream -> unterminated segment
        self._bar_done: dict[str, int] = {}  # stream -> chars of the pending segment already scanned for bars

    def feed(self, text: str, stream: str = "stderr") -> list[ProgressEvent]:
        if not text:
            return []
        buf = self._pending.get(stream, "") + text
        done = self._bar_done.get(stream, 0)
        parts = _SPLIT_RE.split(buf)
        events: list[ProgressEvent] = []
        for i, seg in enumerate(parts[:-1]):
            events += self._segment(seg, stream, done if i == 0 else 0)
        last = parts[-1]
        if len(parts) > 1:
            done = 0
        # Report complete bar refreshes in the unterminated segment now (the live case).
        for m in self._bar_re.finditer(last, done):
            events.append(self._bar_event(m, stream))
            done = m.end()
        if len(last) > MAX_PENDING:  # output that never ends a line: don't hold it forever
            events += self._segment(last, stream, done)
            last, done = "", 0
        self._pending[stream] = last
        self._bar_done[stream] = done
        return events

    def flush(self, stream: str | None = None) -> list[ProgressEvent]:
        """Treat what is left unterminated (one stream or all) as complete, e.g. after the process ends."""
        events: list[ProgressEvent] = []
        for s in [stream] if stream else list(self._pending):
            seg = self._pending.pop(s, "")
            done = self._bar_done.pop(s, 0)
            if seg:
                events += self._segment(seg, s, done)
        return events

    def _segment(self, seg: str, stream: str, bars_done: int) -> list[ProgressEvent]:
        events = [self._bar_event(m, stream) for m in self._bar_re.finditer(seg, bars_done)]
        rest = ANY_BAR_RE.sub("\n", seg)
        for line in rest.split("\n"):
            if line.strip():
                events += self._line(line, stream)
        return events

    def _line(self, line: str, stream: str) -> list[ProgressEvent]:
        out: list[ProgressEvent] = []
        text = clean_record(line)
        if self.emit_lines:
            out.append(ProgressEvent(kind="line", stream=stream, text=text))
        m = EPOCH_RE.match(line)
        if m:
            out.append(
                ProgressEvent(kind="epoch", stream=stream, epoch=int(m.group(1)), epochs=int(m.group(2)))
            )
            return out
        m = TOTAL_RE.search(line)
        if m:
            out.append(ProgressEvent(kind="total", stream=stream, total=int(m.group(1))))
            return out
        m = EPOCHS_RE.search(line)
        if m:
            out.append(ProgressEvent(kind="epochs", stream=stream, epochs=int(m.group(1))))
            return out
        m = SAVED_RE.search(line)
        if m:
            out.append(ProgressEvent(kind="saved", stream=stream, path=m.group(1)))
            return out
        if MODEL_SAVED_RE.search(line):
            out.append(ProgressEvent(kind="model_saved", stream=stream))
            return out
        m = SAMPLE_RE.search(line)
        if m:
            out.append(ProgressEvent(kind="sample", stream=stream, step=int(m.group(1))))
            return out
        if NO_DATA_RE.search(line):
            out.append(ProgressEvent(kind="no_data", stream=stream, text=text))
        if is_error_line(text):
            out.append(ProgressEvent(kind="error_line", stream=stream, text=text))
        return out


def parse_text(stdout: str = "", stderr: str = "", emit_lines: bool = False) -> list[ProgressEvent]:
    """Parse whole captured streams (stdout first, then stderr): for tests and log files."""
    p = ProgressParser(emit_lines=emit_lines)
    return p.feed(stdout, "stdout") + p.flush("stdout") + p.feed(stderr, "stderr") + p.flush("stderr")


def losses_per_step(events: list[ProgressEvent]) -> list[tuple[int, float]]:
    """(step, avr_loss) per optimizer step: the last refresh of each step (set_postfix's), NaN kept."""
    by_step: dict[int, float] = {}
    for e in events:
        if e.kind == "step" and e.step and e.loss is not None:
            by_step[e.step] = e.loss
    return sorted(by_step.items())


def format_seconds(seconds: float | None) -> str:
    """0:16, 12:03, 1:02:03."""
    if seconds is None or (isinstance(seconds, float) and (math.isnan(seconds) or math.isinf(seconds))):
        return "?"
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
