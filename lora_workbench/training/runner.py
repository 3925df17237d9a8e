"""Run a training command (or a job's steps, one after another) as a watched, cancellable
subprocess and report its progress.

The child and everything it starts is one `proctree.ProcessTree`, with both streams read on two
threads in binary chunks (tqdm refreshes end in `\\r`, not newlines) and appended raw to a log file.
The caller's thread parses, updates a `TrainStatus`, calls `on_update`, publishes `events.TRAIN` and
polls for cancel. Cancel stops the whole tree (SIGINT, then SIGTERM, then SIGKILL), because
`accelerate launch` forwards no signals and killing it alone leaves the trainer running.

`run_job(steps, options)` runs a Job's steps in order (musubi-tuner: cache latents, cache text-encoder
outputs, train, convert) with one status, one cancel flag and one log: the status names the step's
phase, a cache step whose project cache is current is skipped, and a failing step ends the job.
"""

from __future__ import annotations

import codecs
import math
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import disk, events, paths
from ..errors import DiskFull, WorkbenchError
from .proctree import ProcessTree
from .progress import ProgressEvent, ProgressParser, format_seconds

STATES = ("starting", "running", "finished", "failed", "cancelled")
FINAL_STATES = ("finished", "failed", "cancelled")
LIVE_STATES = ("starting", "running")
PUBLISH_INTERVAL = 0.25  # seconds between throttled TRAIN events (state changes are always sent)
HEARTBEAT_INTERVAL = 1.0  # on_update is called at least this often, so a node can poll its interrupt
EVENT_MAX_LOSSES = 500  # loss points carried by one published event (ProcessOutcome keeps all)
TAIL_LINES = 30

# The latest run (for the HTTP route and the CLI): its status and its cancel flag.
_current_lock = threading.Lock()
_current_status: dict | None = None
_current_cancel: threading.Event | None = None


@dataclass
class TrainStatus:
    """What the node, the web panel and the CLI show about one training run."""

    run_id: str
    state: str = "starting"  # starting | running | finished | failed | cancelled
    step: int = 0
    total: int = 0
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None  # latest avr_loss
    rate: str = ""  # as tqdm printed it, e.g. "1.33s/it"
    it_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, avr_loss), one per optimizer step
    saved: list[str] = field(default_factory=list)  # checkpoints sd-scripts reported saving
    samples: list[str] = field(default_factory=list)  # sample images found in the sample folder
    message: str = ""  # the latest log line while starting; the reason when failed
    log_path: str = ""
    node_id: str | None = None
    returncode: int | None = None
    # The step of the job running now: its phase ("Caching latents", "Training"; "Caching latents
    # (reused)" for a skipped cache step) and, for a count step (progress "count"), its bar's count.
    phase: str = ""
    progress: str = "train"  # "train": step/total/epoch/loss above are the training's | "count"
    phase_step: int = 0
    phase_total: int = 0

    def to_dict(self, max_losses: int | None = None) -> dict:
        """JSON-ready (NaN/inf losses become null); `max_losses` thins the loss list evenly."""
        losses = self.losses
        if max_losses and len(losses) > max_losses:
            stride = len(losses) / max_losses
            losses = [losses[int(i * stride)] for i in range(max_losses - 1)] + [losses[-1]]
        return {
            "run_id": self.run_id,
            "state": self.state,
            "step": self.step,
            "total": self.total,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "loss": _json_float(self.loss),
            "rate": self.rate,
            "it_per_s": _json_float(self.it_per_s),
            "eta_s": _json_float(self.eta_s),
            "elapsed_s": round(self.elapsed_s, 2),
            "losses": [[s, _json_float(v)] for s, v in losses],
            "saved": list(self.saved),
            "samples": list(self.samples),
            "message": self.message,
            "log_path": self.log_path,
            "node_id": self.node_id,
            "returncode": self.returncode,
            "phase": self.phase,
            "progress": self.progress,
            "phase_step": self.phase_step,
            "phase_total": self.phase_total,
            "text": self.text(),
        }

    def bar(self) -> tuple[int, int]:
        """(done, of) for a progress bar: the count step's count while one runs, else the training's."""
        if self.progress == "count" and self.state in LIVE_STATES:
            return self.phase_step, max(1, self.phase_total or self.phase_step)
        total = max(1, self.total or 1)
        return min(self.step, total), total

    def text(self) -> str:
        """One line for the node and the terminal: "epoch 2/3 · step 12/24 · loss 0.123 · 1.33 s/it · ETA 0:16"."""
        parts: list[str] = []
        if self.progress == "count" and self.state in LIVE_STATES:
            return self._count_text()
        if self.state == "starting":
            return "starting" + (f": {self.message}" if self.message else "")
        if self.epochs:
            parts.append(f"epoch {self.epoch}/{self.epochs}")
        if self.total:
            parts.append(f"step {self.step}/{self.total}")
        elif self.step:
            parts.append(f"step {self.step}")
        if self.loss is not None:
            parts.append(f"loss {_fmt_loss(self.loss)}")
        if self.state == "running":
            if self.it_per_s:
                parts.append(_fmt_rate(self.it_per_s))
            if self.eta_s is not None:
                parts.append(f"ETA {format_seconds(self.eta_s)}")
        else:
            parts.insert(0, self.state)
            parts.append(format_seconds(self.elapsed_s))
            if self.state != "finished" and self.message:
                parts.append(self.message)
        return " · ".join(parts)

    def _count_text(self) -> str:
        """A count step: "Caching latents · 3/12 · 2.90 it/s · ETA 0:03" ("Caching latents · starting:
        INFO loading VAE" before its bar)."""
        if self.state == "starting":
            return self.phase + (f" · starting: {self.message}" if self.message else "")
        parts = [self.phase]
        parts.append(f"{self.phase_step}/{self.phase_total}" if self.phase_total else str(self.phase_step))
        if self.it_per_s:
            parts.append(_fmt_rate(self.it_per_s))
        if self.eta_s is not None:
            parts.append(f"ETA {format_seconds(self.eta_s)}")
        return " · ".join(parts)

    def copy(self) -> TrainStatus:
        return TrainStatus(
            **{
                **self.__dict__,
                "losses": list(self.losses),
                "saved": list(self.saved),
                "samples": list(self.samples),
            }
        )


@dataclass
class ProcessOutcome:
    """How a run ended: exit code, whether it was cancelled, its final status, the log lines worth quoting."""

    returncode: int | None
    cancelled: bool
    status: TrainStatus
    tail: list[str]  # the last meaningful log lines (tracebacks, ERROR lines, last lines)

    @property
    def ok(self) -> bool:
        return self.status.state == "finished"

    def error_message(self, lines: int = 12) -> str:
        """A user-facing failure text: what happened, the last meaningful log lines, where the full log is."""
        text = self.status.message or f"training {self.status.state}"
        if self.tail:
            text += "\n\nLast log lines:\n" + "\n".join(self.tail[-lines:])
        if self.status.log_path:
            text += f"\n\nFull log: {self.status.log_path}"
        return text


def _json_float(v: float | None) -> float | None:
    if v is None or math.isnan(v) or math.isinf(v):
        return None
    return v


def _fmt_loss(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.3g}"


def _fmt_rate(it_per_s: float) -> str:
    return f"{it_per_s:.2f} it/s" if it_per_s >= 1 else f"{1 / it_per_s:.2f} s/it"


# --------------------------------------------------------------------------- public API
def current_status() -> dict | None:
    """The latest run's status dict (the one last published), or None before any run."""
    with _current_lock:
        return _current_status


def cancel_current() -> bool:
    """Ask the running training to stop; False when nothing is running."""
    with _current_lock:
        flag, status = _current_cancel, _current_status
    if flag is None or status is None or status.get("state") in FINAL_STATES:
        return False
    flag.set()
    return True


def publish_status(status: TrainStatus) -> None:
    """Publish a status (also for callers that change the final state, e.g. "no LoRA file written")."""
    global _current_status
    data = status.to_dict(max_losses=EVENT_MAX_LOSSES)
    with _current_lock:
        _current_status = data
    events.publish(events.TRAIN, data)


def child_env(env: dict | None) -> dict:
    """The child's environment: unbuffered UTF-8 output and wide rich records (no wrapping at 80)."""
    out = dict(os.environ if env is None else env)
    out.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "COLUMNS": "250"})
    return out


@dataclass
class RunOptions:
    """How to run one training command: where, with what environment, and whom to tell."""

    cwd: str
    log_path: str  # both output streams are appended here raw
    env: dict | None = None  # None: this process's environment (child_env() is applied either way)
    total_steps: int | None = None  # the step total until sd-scripts prints its own
    on_update: Callable[[TrainStatus], None] | None = None  # runs on the caller's thread
    should_cancel: Callable[[], bool] | None = None  # polled every round
    poll_interval: float = 0.25  # seconds one round waits for output
    run_id: str | None = None  # default: a random id
    node_id: str | None = None
    grace_seconds: float = 5.0  # between SIGINT and SIGTERM when cancelled
    sample_dir: str | None = None  # default: sample/ beside --output_dir, else beside the first checkpoint
    # A resumed run: the steps its state had done, and the loss curve so far (sd-scripts counts a
    # resumed run's steps from 0 again, with the whole run's total).
    step_offset: int = 0
    prior_losses: list[tuple[int, float]] | None = None
    trainer: str = "sd-scripts"  # who runs: its name in the status sentences


def run_process(argv: list[str], options: RunOptions) -> ProcessOutcome:
    """Run `argv` (no shell) until it exits or is cancelled; never leaves a process of its tree behind.

    `options.on_update` runs on this (the caller's) thread; if it raises (e.g. ComfyUI's interrupt),
    the process tree is stopped and the exception re-raised. So is KeyboardInterrupt.
    """
    return _ProcessRun(argv, options).run()


def run_job(steps, options: RunOptions) -> ProcessOutcome:
    """Run a Job's steps (training/job.py `Step`s) in order, one process tree at a time, as one run:
    one TrainStatus (its `phase` the step's), one cancel flag, one log. A cache step whose
    `reuse_marker` holds its `reuse_key` is skipped; after a cache step succeeds, the key is written
    there. The first step that fails or is cancelled ends the job (a job of several steps names the
    phase in the message: "Caching latents failed: ..."). `options` as for run_process; its
    step_offset and total_steps are the train step's."""
    return _JobRun(tuple(steps), options).run()


def _new_cancel_flag() -> threading.Event:
    """A fresh cancel flag, made the one `cancel_current()` sets."""
    global _current_cancel
    flag = threading.Event()
    with _current_lock:
        _current_cancel = flag
    return flag


def _new_status(options: RunOptions) -> TrainStatus:
    return TrainStatus(
        run_id=options.run_id or uuid.uuid4().hex[:12],
        total=int(options.total_steps or 0),
        log_path=str(options.log_path),
        node_id=options.node_id,
        losses=list(options.prior_losses or []),
        step=int(options.step_offset),
    )


@dataclass
class _InJob:
    """What a process run shares with the job it is one step of (run_process: a job of one)."""

    status: TrainStatus
    cancel_flag: threading.Event
    started: float  # the job's start: elapsed time counts from it
    progress: str = "train"  # the step's: "train" | "count"
    final: bool = True  # the job's last step: its success is the run's "finished"
    phase: str = ""  # named in a failure when the job has several steps ("" = not named)


class _ProcessRun:
    """One watched run: start the tree, then rounds of read / cancel? / exited? / report, then settle."""

    def __init__(self, argv: list[str], options: RunOptions, job: _InJob | None = None):
        self.argv = [str(a) for a in argv]
        self.opts = options
        if job is None:
            job = _InJob(_new_status(options), _new_cancel_flag(), time.monotonic())
        self.job = job
        self.status = job.status
        sample_dir = options.sample_dir or _sample_dir_from_argv(self.argv)
        offset = options.step_offset if job.progress == "train" else 0
        self.watcher = _Watcher(self.status, sample_dir, offset, job.progress)
        self.cancel_flag = job.cancel_flag
        self.cancelled = False
        self.succeeded = False
        self.started = job.started
        self.exited_at: float | None = None
        self.last_update = 0.0
        self.last_publish = 0.0
        self.published_state: str | None = None

    def run(self) -> ProcessOutcome:
        self.output = OutputPump(self.opts.log_path)
        try:
            self.tree = ProcessTree.start(self.argv, cwd=self.opts.cwd, env=child_env(self.opts.env))
        except (OSError, ValueError) as exc:
            return self._could_not_start(exc)
        self.output.start(self.tree.popen)
        try:
            self._publish(0.0)
            while not self._round():
                pass
            self._read_the_rest()
            # What the last reads changed is told before the end: a run whose output all came in one
            # read, together with its exit, is still seen "running" before "finished".
            self._report(time.monotonic())
        except BaseException as exc:
            self._abort(exc)
            raise
        self._settle()
        publish_status(
            self.status
        )  # first: on_update may raise (ComfyUI's interrupt) and the end must be told
        if self.opts.on_update is not None:
            self.opts.on_update(self.status)
        return ProcessOutcome(self.tree.popen.returncode, self.cancelled, self.status, self.watcher.tail())

    def _could_not_start(self, exc: OSError | ValueError) -> ProcessOutcome:
        self.output.close()
        self.status.state = "failed"
        self.status.message = self._failed(
            f"Could not start {self.argv[0]}: {getattr(exc, 'strerror', None) or exc}"
        )
        publish_status(self.status)
        return ProcessOutcome(None, False, self.status, [self.status.message])

    def _round(self) -> bool:
        """Read what came, act on a cancel, notice the exit, report; True once there is nothing left to read."""
        for stream, text in self._wait_for_output():
            self.watcher.feed(text, stream)
        now = time.monotonic()
        self.status.elapsed_s = now - self.started
        self._cancel_if_asked()
        if self._child_exited(now) and (self.output.open_streams <= 0 or now - self.exited_at > 3.0):
            return True
        self._report(now)
        return False

    def _wait_for_output(self) -> list[tuple[str, str]]:
        """What the child wrote, waiting up to a poll interval; once both pipes are closed, wait for the
        exit itself (no output will come to end the wait early)."""
        if self.output.open_streams > 0:
            return self.output.take(self.opts.poll_interval)
        try:
            self.tree.popen.wait(self.opts.poll_interval)
        except subprocess.TimeoutExpired:
            pass
        return []

    def _cancel_if_asked(self) -> None:
        if self.cancelled:
            return
        should_cancel = self.opts.should_cancel
        if self.cancel_flag.is_set() or (should_cancel is not None and should_cancel()):
            self.cancelled = True
            self.status.message = "cancelling"
            publish_status(self.status)
            self.tree.stop(self.opts.grace_seconds)

    def _child_exited(self, now: float) -> bool:
        if self.exited_at is None and self.tree.popen.poll() is not None:
            self.exited_at = now
            # Anything of the tree still running is an orphan now (e.g. a trainer whose launcher died).
            self.tree.stop_leftovers()
        return self.exited_at is not None

    def _report(self, now: float) -> None:
        """on_update on a change or a heartbeat; a TRAIN event on a state change or, throttled, on a change."""
        watcher = self.watcher
        if watcher.sampling and now - watcher.last_sample_scan >= HEARTBEAT_INTERVAL:
            watcher.scan_samples(now)
        changed = watcher.take_changed()
        if self.opts.on_update is not None and (changed or now - self.last_update >= HEARTBEAT_INTERVAL):
            self.last_update = now
            self.opts.on_update(self.status)
        if self.status.state != self.published_state or (
            changed and now - self.last_publish >= PUBLISH_INTERVAL
        ):
            self._publish(now)

    def _publish(self, now: float) -> None:
        publish_status(self.status)
        self.published_state, self.last_publish = self.status.state, now

    def _abort(self, exc: BaseException) -> None:
        """ComfyUI's interrupt raised from on_update, Ctrl-C, or a bug: the tree must not outlive us."""
        self.tree.stop(min(self.opts.grace_seconds, 2.0))
        interrupted = isinstance(exc, KeyboardInterrupt) or "Interrupt" in type(exc).__name__
        st = self.status
        st.state = "cancelled" if interrupted else "failed"
        st.message = "cancelled" if interrupted else f"stopped: {type(exc).__name__}: {exc}"
        st.returncode = self.tree.popen.poll()
        st.elapsed_s = time.monotonic() - self.started
        publish_status(st)
        self.output.close()

    def _read_the_rest(self) -> None:
        self.output.close()
        for stream, text in self.output.take(0):  # what the readers queued before EOF
            self.watcher.feed(text, stream)
        self.watcher.finish()
        self.status.elapsed_s = time.monotonic() - self.started
        self.status.returncode = self.tree.popen.returncode

    def _settle(self) -> None:
        """The final state: cancelled, failed (an exit code, or sd-scripts' "No data found"), or finished
        (a step before the job's last: still running, the next step follows)."""
        st, rc, who = self.status, self.tree.popen.returncode, self.opts.trainer
        if self.cancelled:
            st.state, st.message = "cancelled", "cancelled by the user"
        elif rc != 0:
            error = self.watcher.error()
            st.state = "failed"
            st.message = self._failed(f"{who} exited with code {rc}" + (f": {error}" if error else ""))
        elif self.watcher.no_data:
            st.state = "failed"
            st.message = self._failed(
                f"{who} found no training images (No data found): the dataset folders must "
                "hold images in N_name subfolders"
            )
        elif not self.job.final:
            self.succeeded = True
            st.state, st.message = "running", ""
        else:
            self.succeeded = True
            st.state = "finished"
            st.message = "" if st.saved else f"{who} reported no saved checkpoint"
            st.eta_s = 0.0

    def _failed(self, message: str) -> str:
        return f"{self.job.phase} failed: {message}" if self.job.phase else message


class _JobRun:
    """A job's steps as one run: each step a _ProcessRun on the shared status and cancel flag."""

    def __init__(self, steps: tuple, options: RunOptions):
        self.steps, self.opts = steps, options
        self.status = _new_status(options)
        self.cancel_flag = _new_cancel_flag()
        self.started = time.monotonic()

    def run(self) -> ProcessOutcome:
        outcome: ProcessOutcome | None = None
        for i, step in enumerate(self.steps):
            final = i == len(self.steps) - 1
            if self._cancel_asked():
                return self._cancelled_between(outcome)
            if reused(step):
                self._announce_reused(step, final)
                continue
            run = _ProcessRun(step.argv, replace(self.opts, cwd=step.cwd), self._in_job(step, final))
            outcome = run.run()
            if not run.succeeded:
                return outcome
            if step.reuse_key:
                write_reuse_marker(step)
        return outcome or self._nothing_ran()

    def _in_job(self, step, final: bool) -> _InJob:
        st = self.status
        st.phase, st.progress, st.state, st.message = step.phase, step.progress, "starting", ""
        st.phase_step = st.phase_total = 0
        st.rate, st.it_per_s, st.eta_s = "", None, None
        named = step.phase if len(self.steps) > 1 else ""
        return _InJob(st, self.cancel_flag, self.started, step.progress, final, named)

    def _cancel_asked(self) -> bool:
        asked = self.opts.should_cancel
        return self.cancel_flag.is_set() or (asked is not None and bool(asked()))

    def _cancelled_between(self, last: ProcessOutcome | None) -> ProcessOutcome:
        """Cancel between two steps: nothing is running, the next step never starts."""
        st = self.status
        st.state, st.message = "cancelled", "cancelled by the user"
        st.elapsed_s = time.monotonic() - self.started
        self._tell()
        return ProcessOutcome(None, True, st, last.tail if last is not None else [])

    def _announce_reused(self, step, final: bool) -> None:
        st = self.status
        st.phase, st.progress, st.phase_step, st.phase_total = f"{step.phase} (reused)", "count", 0, 0
        st.elapsed_s = time.monotonic() - self.started
        if final:
            st.state = "finished"
        self._tell()

    def _nothing_ran(self) -> ProcessOutcome:
        """Every step was skipped (a job of cache steps whose caches are current)."""
        self.status.state = "finished"
        return ProcessOutcome(0, False, self.status, [])

    def _tell(self) -> None:
        publish_status(self.status)
        if self.opts.on_update is not None:
            self.opts.on_update(self.status)


def _marked(step) -> str:
    """What a cache step's marker holds once its step succeeded here: its key and the identity of the
    marker's folder on this machine. The key is derived from what the project shows (its files'
    names, sizes and times, the settings), so a shared project could ship a marker that matches it
    over caches of other images; its folder was made anew where the project was unpacked, so a marker
    written elsewhere never names it."""
    st = os.stat(Path(step.reuse_marker).parent)
    return f"{step.reuse_key} {st.st_dev}:{st.st_ino}"


def reused(step) -> bool:
    """A cache step whose project cache holds its output: its marker file holds its key, written in
    this folder (a marker that is no regular file, e.g. a FIFO planted in a shared project, is refused
    without blocking)."""
    if not step.reuse_key or not step.reuse_marker:
        return False
    try:
        with paths.open_file(step.reuse_marker, what="cache marker", confined=False) as f:
            return f.read(limit=4096).decode("utf-8").strip() == _marked(step)
    except (OSError, ValueError, WorkbenchError):
        return False


def write_reuse_marker(step) -> None:
    """After a cache step succeeded: its key (with its folder's identity, _marked) into its marker
    (whole or not at all). A marker that
    cannot be written (a folder planted under its name by a shared project) leaves the cache unmarked,
    so the next run caches again, rather than failing this one after its cache step; a full disk
    still stops the run with its sentence."""
    if step.reuse_marker:
        try:
            Path(step.reuse_marker).parent.mkdir(parents=True, exist_ok=True)
            disk.write_atomic(step.reuse_marker, _marked(step) + "\n")
        except DiskFull:
            raise
        except OSError:
            return


class OutputPump:
    """Both pipes read on two threads in binary chunks (tqdm refreshes end in `\\r`, not newlines),
    appended raw to the log file (if any: the tagger keeps none) and queued as decoded text for the
    caller's thread."""

    def __init__(self, log_path: str | None = None):
        self.log_file = None
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            self.log_file = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        self.chunks: queue.Queue = queue.Queue()
        self.log_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.open_streams = 0

    def start(self, popen: subprocess.Popen) -> None:
        for pipe, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr")):
            thread = threading.Thread(
                target=_read_stream,
                args=(pipe, name, self.chunks, self.log_file, self.log_lock),
                name=f"lora-workbench-{name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
        self.open_streams = len(self.threads)

    def take(self, timeout: float) -> list[tuple[str, str]]:
        """The (stream, text) chunks queued now, waiting up to `timeout` for the first; counts closed streams."""
        out = []
        for stream, text in _drain(self.chunks, timeout):
            if text is None:
                self.open_streams -= 1
            else:
                out.append((stream, text))
        return out

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=2.0)
        try:
            if self.log_file is not None:
                self.log_file.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- parsing into a status
class _Watcher:
    """Applies parser events to a TrainStatus and keeps the meaningful log lines for error messages."""

    def __init__(
        self, status: TrainStatus, sample_dir: str | None, step_offset: int = 0, progress: str = "train"
    ):
        self.status = status
        self.step_offset = step_offset
        self.parser = ProgressParser(emit_lines=True, bar=progress)
        self.lines: deque[str] = deque(maxlen=2000)
        self.no_data = False
        self.sample_dir = sample_dir
        self.sampling = False  # sd-scripts announced sample images: look for new files every second
        self.last_sample_scan = 0.0
        self._changed = False

    def feed(self, text: str, stream: str) -> None:
        for ev in self.parser.feed(text, stream):
            self.apply(ev)

    def finish(self) -> None:
        for ev in self.parser.flush():
            self.apply(ev)
        self.scan_samples()

    def take_changed(self) -> bool:
        changed, self._changed = self._changed, False
        return changed

    def apply(self, ev: ProgressEvent) -> None:
        handler = _Watcher._HANDLERS.get(ev.kind)
        changed = handler(self, ev) if handler is not None else ev.kind == "model_saved"
        self._changed = self._changed or changed

    # One handler per parser event kind; each says whether the status changed.
    def _on_step(self, ev: ProgressEvent) -> bool:
        st = self.status
        if st.state == "starting":
            st.state, st.message = "running", ""
        st.step = (ev.step or 0) + self.step_offset
        if not self.step_offset:  # a resumed run's bar total is not what is left: keep the banner's
            st.total = ev.total or st.total
        st.rate, st.it_per_s, st.eta_s = ev.rate or "", ev.it_per_s, ev.remaining
        if self.step_offset and ev.remaining is not None and ev.it_per_s and st.total:
            st.eta_s = max(0.0, (st.total - st.step) / ev.it_per_s)
        if ev.loss is not None:
            st.loss = ev.loss
            if ev.step:
                _record_loss(st.losses, st.step, ev.loss)
        return True

    def _on_count(self, ev: ProgressEvent) -> bool:
        st = self.status
        if st.state == "starting":
            st.state, st.message = "running", ""
        st.phase_step, st.phase_total = ev.step or 0, ev.total or 0
        st.rate, st.it_per_s, st.eta_s = ev.rate or "", ev.it_per_s, ev.remaining
        return True

    def _on_total(self, ev: ProgressEvent) -> bool:
        if ev.total:
            self.status.total = ev.total
        return True

    def _on_epochs(self, ev: ProgressEvent) -> bool:
        self.status.epochs = ev.epochs or self.status.epochs
        return True

    def _on_epoch(self, ev: ProgressEvent) -> bool:
        self.status.epoch, self.status.epochs = ev.epoch or 0, ev.epochs or self.status.epochs
        return True

    def _on_saved(self, ev: ProgressEvent) -> bool:
        if ev.path and ev.path not in self.status.saved:
            self.status.saved.append(ev.path)
        self.scan_samples()
        return True

    def _on_sample(self, ev: ProgressEvent) -> bool:
        self.sampling = True
        return True

    def _on_no_data(self, ev: ProgressEvent) -> bool:
        self.no_data = True
        return True

    def _on_line(self, ev: ProgressEvent) -> bool:
        text = ev.text or ""
        self.lines.append(text)
        if self.status.state != "starting":
            return False
        self.status.message = text[:200]  # what sd-scripts is doing before the first step
        return True

    _HANDLERS: dict[str, Callable[[_Watcher, ProgressEvent], bool]] = {
        "step": _on_step,
        "count": _on_count,
        "total": _on_total,
        "epochs": _on_epochs,
        "epoch": _on_epoch,
        "saved": _on_saved,
        "sample": _on_sample,
        "no_data": _on_no_data,
        "line": _on_line,
    }

    def scan_samples(self, now: float = 0.0) -> None:
        self.last_sample_scan = now
        folder = self.sample_dir
        if folder is None and self.status.saved:
            folder = str(Path(self.status.saved[0]).parent / "sample")
        if not folder or not os.path.isdir(folder):
            return
        try:
            found = sorted(
                str(p)
                for p in Path(folder).iterdir()
                if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
            )
        except OSError:
            return
        for p in found:
            if p not in self.status.samples:
                self.status.samples.append(p)
                self._changed = True

    def tail(self, limit: int = TAIL_LINES) -> list[str]:
        return summarize_tail(list(self.lines), limit)

    def error(self) -> str:
        return error_summary(list(self.lines))


_EXC_LINE_RE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(:.*)?$")


def error_summary(lines: list[str]) -> str:
    """The line that says what went wrong: the trainer's last exception line, else the last ERROR record.

    accelerate's own `CalledProcessError ... returned non-zero exit status 1` says nothing new and
    is skipped.
    """
    exc = [ln for ln in lines if _EXC_LINE_RE.match(ln) and "CalledProcessError" not in ln]
    if exc:
        return exc[-1].strip()[:300]
    errs = [ln for ln in lines if ln.startswith("ERROR") or ln.startswith("CRITICAL")]
    return errs[-1].strip()[:300] if errs else ""


def _record_loss(losses: list[tuple[int, float]], step: int, loss: float) -> None:
    # update(1) refreshes a step with the previous loss, set_postfix with its own: the last one wins.
    if losses and losses[-1][0] == step:
        losses[-1] = (step, loss)
    elif not losses or step > losses[-1][0]:
        losses.append((step, loss))
    else:  # the bar restarted (a resumed run): forget the steps it will redo
        while losses and losses[-1][0] >= step:
            losses.pop()
        losses.append((step, loss))


def _drain(q: queue.Queue, timeout: float) -> list[tuple[str, str | None]]:
    """Everything queued now; waits up to `timeout` for the first item."""
    items = []
    try:
        items.append(q.get(timeout=timeout) if timeout > 0 else q.get_nowait())
        while True:
            items.append(q.get_nowait())
    except queue.Empty:
        pass
    return items


def _sample_dir_from_argv(argv: list[str]) -> str | None:
    """sd-scripts writes samples to `<output_dir>/sample`; None when --output_dir is not on the command line."""
    args = [str(a) for a in argv]
    for i, a in enumerate(args):
        if a == "--output_dir" and i + 1 < len(args):
            return str(Path(args[i + 1]) / "sample")
        if a.startswith("--output_dir="):
            return str(Path(a.split("=", 1)[1]) / "sample")
    return None


def summarize_tail(lines: list[str], limit: int = TAIL_LINES) -> list[str]:
    """The lines worth quoting in an error: ERROR lines, each traceback's head and end, the last lines.

    Traceback caret lines (`^^^^`) are dropped, and accelerate's own traceback around the trainer's
    (`CalledProcessError ... returned non-zero exit status`) shrinks to its last line.
    """
    lines = [ln.rstrip() for ln in lines if ln.strip() and not _CARETS_RE.match(ln)]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if not starts:
        last = lines[-limit:]
        errors = [ln for ln in lines[:-limit] if "ERROR" in ln or "Error" in ln][-5:]
        return (errors + last)[-limit:] if errors else last
    first = starts[0]
    out = [ln for ln in lines[max(0, first - 200) : first] if "ERROR" in ln][-5:]
    bounds = starts + [len(lines)]
    blocks = [lines[i:j] for i, j in zip(bounds[:-1], bounds[1:], strict=True)]
    launcher = [len(blocks) > 1 and any("CalledProcessError" in ln for ln in blk[-3:]) for blk in blocks]
    n_full = max(1, len(blocks) - sum(launcher))
    per_block = max(6, (limit - len(out) - sum(launcher)) // n_full)
    for block, is_launcher in zip(blocks, launcher, strict=True):
        if is_launcher:
            block = [ln if len(ln) <= 200 else ln[:160] + " ... " + ln[-35:] for ln in block[-1:]]
        elif len(block) > per_block:
            block = [block[0], "  ..."] + block[-(per_block - 2) :]
        out += block
    if len(out) > limit:
        out = out[:3] + ["  ..."] + out[-(limit - 4) :]
    return out


_CARETS_RE = re.compile(r"^\s*[\^~]+\s*$")


# --------------------------------------------------------------------------- reading the pipes
def _read_stream(pipe, name: str, out: queue.Queue, log_file, log_lock: threading.Lock) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = pipe.fileno()
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            if log_file is not None:
                with log_lock:
                    try:
                        log_file.write(data)
                    except (OSError, ValueError):
                        pass
            text = decoder.decode(data)
            if text:
                out.put((name, text))
        rest = decoder.decode(b"", final=True)
        if rest:
            out.put((name, rest))
    finally:
        out.put((name, None))
