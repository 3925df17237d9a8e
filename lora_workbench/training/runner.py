"""Run a training command as a watched, cancellable subprocess and report its progress.

The child runs in its own process group (session), with both streams read on two threads in
binary chunks (tqdm refreshes end in `\\r`, not newlines) and appended raw to a log file. The
caller's thread parses, updates a `TrainStatus`, calls `on_update`, publishes `events.TRAIN` and
polls for cancel. Cancel signals the whole group (SIGINT, then SIGTERM, then SIGKILL), because
`accelerate launch` forwards no signals and killing it alone leaves the trainer running.
"""

from __future__ import annotations

import codecs
import math
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import events
from .progress import ProgressEvent, ProgressParser, format_seconds

STATES = ("starting", "running", "finished", "failed", "cancelled")
FINAL_STATES = ("finished", "failed", "cancelled")
PUBLISH_INTERVAL = 0.25  # seconds between throttled TRAIN events (state changes are always sent)
HEARTBEAT_INTERVAL = 1.0  # on_update is called at least this often, so a node can poll its interrupt
EVENT_MAX_LOSSES = 500  # loss points carried by one published event (RunResult keeps all)
TAIL_LINES = 30
_IS_WINDOWS = os.name == "nt"

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
            "text": self.text(),
        }

    def text(self) -> str:
        """One line for the node and the terminal: "epoch 2/3 · step 12/24 · loss 0.123 · 1.33 s/it · ETA 0:16"."""
        parts: list[str] = []
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
class RunResult:
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


def run_process(  # noqa: C901 (cut into steps pending)
    argv: list[str],
    *,
    cwd: str,
    env: dict | None,
    log_path: str,
    total_steps: int | None = None,
    on_update: Callable[[TrainStatus], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_interval: float = 0.25,
    run_id: str | None = None,
    node_id: str | None = None,
    grace_seconds: float = 5.0,
    sample_dir: str | None = None,
) -> RunResult:
    """Run `argv` (no shell) until it exits or is cancelled; never leaves a process of its group behind.

    `on_update` runs on this (the caller's) thread; if it raises (e.g. ComfyUI's interrupt), the
    process tree is killed and the exception re-raised. So is KeyboardInterrupt. `sample_dir`
    (default: `sample/` beside the first saved checkpoint) is scanned for sample images.
    """
    global _current_cancel
    status = TrainStatus(
        run_id=run_id or uuid.uuid4().hex[:12],
        total=int(total_steps or 0),
        log_path=str(log_path),
        node_id=node_id,
    )
    cancel_flag = threading.Event()
    with _current_lock:
        _current_cancel = cancel_flag
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed by _close()
    watcher = _Watcher(status, sample_dir or _sample_dir_from_argv(argv))
    started = time.monotonic()
    try:
        proc = _spawn(argv, cwd, env)
    except (OSError, ValueError) as exc:
        log_file.close()
        status.state = "failed"
        status.message = f"Could not start {argv[0]}: {getattr(exc, 'strerror', None) or exc}"
        publish_status(status)
        return RunResult(None, False, status, [status.message])

    chunks: queue.Queue = queue.Queue()
    log_lock = threading.Lock()
    readers = [
        threading.Thread(
            target=_read_stream,
            args=(pipe, name, chunks, log_file, log_lock),
            name=f"lora-workbench-{name}",
            daemon=True,
        )
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
    ]
    for t in readers:
        t.start()

    cancelled = False
    last_publish = 0.0
    last_update = 0.0
    published_state = None
    try:
        publish_status(status)
        published_state = status.state
        open_streams = 2
        exited_at = None
        while True:
            for stream, text in _drain(chunks, poll_interval):
                if text is None:
                    open_streams -= 1
                else:
                    watcher.feed(text, stream)
            now = time.monotonic()
            status.elapsed_s = now - started

            if not cancelled and (cancel_flag.is_set() or (should_cancel is not None and should_cancel())):
                cancelled = True
                status.message = "cancelling"
                publish_status(status)
                _terminate_tree(proc, grace_seconds)

            rc = proc.poll()
            if rc is not None and exited_at is None:
                exited_at = now
                # Anything of the group still running is an orphan now (e.g. a trainer whose launcher died).
                _reap_orphans(proc)
            if exited_at is not None and (open_streams <= 0 or now - exited_at > 3.0):
                break

            if watcher.sampling and now - watcher.last_sample_scan >= HEARTBEAT_INTERVAL:
                watcher.scan_samples(now)
            changed = watcher.take_changed()
            if on_update is not None and (changed or now - last_update >= HEARTBEAT_INTERVAL):
                last_update = now
                on_update(status)
            if status.state != published_state or (changed and now - last_publish >= PUBLISH_INTERVAL):
                publish_status(status)
                published_state, last_publish = status.state, now
    except BaseException as exc:
        # ComfyUI's interrupt raised from on_update, Ctrl-C, or a bug: the tree must not outlive us.
        _terminate_tree(proc, min(grace_seconds, 2.0))
        interrupted = isinstance(exc, KeyboardInterrupt) or "Interrupt" in type(exc).__name__
        status.state = "cancelled" if interrupted else "failed"
        status.message = "cancelled" if interrupted else f"stopped: {type(exc).__name__}: {exc}"
        status.returncode = proc.poll()
        status.elapsed_s = time.monotonic() - started
        publish_status(status)
        _close(readers, log_file)
        raise

    _close(readers, log_file)
    for stream, text in _drain(chunks, 0):  # what the readers queued before EOF
        if text is not None:
            watcher.feed(text, stream)
    watcher.finish()
    status.elapsed_s = time.monotonic() - started
    status.returncode = proc.returncode
    tail = watcher.tail()
    if cancelled:
        status.state, status.message = "cancelled", "cancelled by the user"
    elif proc.returncode != 0:
        status.state = "failed"
        status.message = f"sd-scripts exited with code {proc.returncode}" + (
            f": {error}" if (error := watcher.error()) else ""
        )
    elif watcher.no_data:
        status.state = "failed"
        status.message = (
            "sd-scripts found no training images (No data found): the dataset folders must "
            "hold images in N_name subfolders"
        )
    else:
        status.state = "finished"
        status.message = "" if status.saved else "sd-scripts reported no saved checkpoint"
        status.eta_s = 0.0
    if on_update is not None:
        on_update(status)
    publish_status(status)
    return RunResult(proc.returncode, cancelled, status, tail)


# --------------------------------------------------------------------------- parsing into a status
class _Watcher:
    """Applies parser events to a TrainStatus and keeps the meaningful log lines for error messages."""

    def __init__(self, status: TrainStatus, sample_dir: str | None):
        self.status = status
        self.parser = ProgressParser(emit_lines=True)
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

    def apply(self, ev: ProgressEvent) -> None:  # noqa: C901 (cut into steps pending)
        st = self.status
        changed = True
        if ev.kind == "step":
            if st.state == "starting":
                st.state, st.message = "running", ""
            st.step, st.total = ev.step or 0, ev.total or st.total
            st.rate, st.it_per_s, st.eta_s = ev.rate or "", ev.it_per_s, ev.remaining
            if ev.loss is not None:
                st.loss = ev.loss
                if ev.step:
                    _record_loss(st.losses, ev.step, ev.loss)
        elif ev.kind == "total":
            if ev.total:
                st.total = ev.total
        elif ev.kind == "epochs":
            st.epochs = ev.epochs or st.epochs
        elif ev.kind == "epoch":
            st.epoch, st.epochs = ev.epoch or 0, ev.epochs or st.epochs
        elif ev.kind == "saved":
            if ev.path and ev.path not in st.saved:
                st.saved.append(ev.path)
            self.scan_samples()
        elif ev.kind == "sample":
            self.sampling = True
        elif ev.kind == "no_data":
            self.no_data = True
        elif ev.kind == "line":
            text = ev.text or ""
            self.lines.append(text)
            changed = st.state == "starting"
            if changed:
                st.message = text[:200]
        elif ev.kind != "model_saved":
            changed = False
        self._changed = self._changed or changed

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


# --------------------------------------------------------------------------- processes
def _spawn(argv: list[str], cwd: str, env: dict | None) -> subprocess.Popen:
    kwargs: dict = {}
    if _IS_WINDOWS:
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        **kwargs,
    )


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


def _close(readers: list[threading.Thread], log_file) -> None:
    for t in readers:
        t.join(timeout=2.0)
    try:
        log_file.close()
    except OSError:
        pass


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, from /proc; [] where /proc is missing."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for e in entries:
        if not e.isdigit():
            continue
        st = _proc_stat(int(e))
        if st and st[1] != "Z" and st[3] == pgid:
            out.append(int(e))
    return out


def _proc_stat(pid: int) -> tuple[int, str, int, int] | None:
    """(pid, state, ppid, pgrp) from /proc/PID/stat, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return pid, rest[0], int(rest[1]), int(rest[2])
    except (IndexError, ValueError):
        return None


def _descendants(pid: int) -> list[int]:
    """Live descendants of `pid` (also those that moved to another group), from /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
        if e.isdigit():
            st = _proc_stat(int(e))
            if st and st[1] != "Z":
                children.setdefault(st[2], []).append(st[0])
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone: it no longer runs, only waits to be reaped)."""
    if os.path.isdir("/proc"):
        st = _proc_stat(pid)
        return st is not None and st[1] not in ("Z", "X")
    if _IS_WINDOWS:  # pragma: no cover - os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tree_pids(proc: subprocess.Popen) -> set[int]:
    pids = set(_group_members(proc.pid)) | set(_descendants(proc.pid))
    if proc.poll() is None:
        pids.add(proc.pid)
    return pids


def _signal_pids(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    if _IS_WINDOWS:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_orphans(proc: subprocess.Popen) -> None:
    """After the main process exited: stop whatever of its group or tree is still running."""
    if _IS_WINDOWS:
        return
    left = set(_group_members(proc.pid)) | set(_descendants(proc.pid))
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 3.0)):
        if not left:
            return
        _kill_group(proc, sig)
        _signal_pids(left, sig)
        if _wait_gone(proc, left, wait):
            return


def _wait_gone(proc: subprocess.Popen, tracked: set[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        proc.poll()
        alive = {p for p in tracked if pid_alive(p)} | set(_group_members(proc.pid))
        if proc.returncode is not None and not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _terminate_tree(proc: subprocess.Popen, grace_seconds: float) -> None:
    """SIGINT the group, wait `grace_seconds`, SIGTERM, wait, SIGKILL: nothing of the tree survives."""
    if _IS_WINDOWS:  # pragma: no cover - not exercised on CI
        _terminate_tree_windows(proc, grace_seconds)
        return
    tracked = _tree_pids(proc)
    term_wait = min(max(grace_seconds, 0.5), 3.0)
    for sig, wait in ((signal.SIGINT, grace_seconds), (signal.SIGTERM, term_wait), (signal.SIGKILL, 5.0)):
        tracked |= _tree_pids(proc)
        _kill_group(proc, sig)
        _signal_pids(tracked, sig)
        if _wait_gone(proc, tracked, wait):
            return


def _terminate_tree_windows(proc: subprocess.Popen, grace_seconds: float) -> None:  # pragma: no cover
    try:
        proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        proc.wait(grace_seconds)
        return
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
