"""Live relinking: a watchdog observer on a library keeps the UI folders' links in step.

Events are grouped per category (the library's top-level folder) and relinked after a short quiet
window, so a burst of downloads is one relink. Files still being written wait until they are
complete: partial-download names until they are renamed; a file written in place until its writer
closes it (Linux reports the close), or - where no close is reported - until its size and time
have not changed for QUIET_S, long enough for a download that stalls. The watcher survives the library folder
being removed and recreated (it re-arms), and there is one watcher per library however often
`ensure_watcher` is called. watchdog is imported only when a watcher starts.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from .. import events
from . import layout
from . import linker as library

log = logging.getLogger("lora_workbench")

DEBOUNCE_S = 0.1  # quiet window after the last event of a category before it is relinked
MAX_DELAY_S = 1.0  # a long burst still relinks at least this often
HEALTH_S = 1.0  # how often to check that the library folder is there and watched
QUIET_S = 10.0  # no close reported: a file unchanged this long is complete (a stalled download is not)
OPEN_QUIET_S = 600.0  # closes are reported: a file still open counts as complete only after this
GROWING_POLL_S = 1.0  # how often files still being written are looked at again

# Event types that never change what is linked (reads, metadata).
_IGNORED_EVENT_TYPES = {"opened", "closed_no_write", "attrib"}
# Top-level folders that have a link target somewhere.
_LINKED_CATEGORIES = {c for layout in layout.UI_LAYOUTS.values() for c in layout}

ReportHook = Callable[[library.LinkReport], None]


def _norm(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fsdecode(path)))


class LibraryWatcher:
    """Watches one library folder and relinks the touched categories into `ui_dirs`."""

    def __init__(
        self,
        library_dir: str | os.PathLike,
        ui_dirs: Mapping[str, str | os.PathLike],
        on_report: ReportHook | None = None,
        debounce: float = DEBOUNCE_S,
        max_delay: float = MAX_DELAY_S,
        health_interval: float = HEALTH_S,
        roots: list[str] | None = None,
    ):
        self.library = _norm(library_dir)
        self.ui_dirs = {k: Path(v) for k, v in ui_dirs.items()}
        self.roots = roots  # a workflow's allowed roots (see linker.plan_links); None: the CLI
        self.on_report = on_report
        self.debounce = debounce
        self.max_delay = max_delay
        self.health_interval = health_interval
        self.last_report: library.LinkReport | None = None
        self.last_events: deque[dict] = deque(maxlen=50)
        self.relinks = 0
        self._cond = threading.Condition()
        self._first: dict[str, float] = {}  # category -> time of its first pending event
        self._last: dict[str, float] = {}  # category -> time of its latest pending event
        # file still being written -> (size, mtime_ns, time it last changed)
        self._growing: dict[str, tuple[int, int, float]] = {}
        self._not_before: dict[str, float] = {}  # category -> do not relink before (growing files)
        self._close_events = False  # has the observer reported a writer closing a file?
        self.quiet = QUIET_S
        self._rearm = False
        self._stopping = False
        self._observer = None
        self._root_watch = None
        self._root_id: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def start(self) -> LibraryWatcher:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.daemon = True
        parent = os.path.dirname(self.library)
        if os.path.isdir(parent):  # the parent sees the library folder vanish and come back
            try:
                self._observer.schedule(_Handler(self, parent_watch=True), parent, recursive=False)
            except OSError as exc:
                log.debug("lora-workbench: cannot watch %s: %s", parent, exc)
        self._arm()
        self._observer.start()
        self._thread = threading.Thread(
            target=self._run, name=f"lora-workbench watch {self.library}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the observer and the relink thread and wait for both."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout)
            except Exception as exc:  # an observer that never started
                log.debug("lora-workbench: observer stop: %s", exc)

    def update(
        self,
        ui_dirs: Mapping[str, str | os.PathLike],
        on_report: ReportHook | None = None,
        roots: list[str] | None = None,
    ) -> None:
        """New targets (the node ran again with other UI folders); takes effect at the next relink."""
        with self._cond:
            self.ui_dirs = {k: Path(v) for k, v in ui_dirs.items()}
            self.roots = roots
            if on_report is not None:
                self.on_report = on_report

    def _arm(self) -> None:
        if self._root_watch is not None:
            try:
                self._observer.unschedule(self._root_watch)
            except Exception:  # its emitter may already be gone with the folder
                pass
            self._root_watch = None
            self._root_id = None
        if not os.path.isdir(self.library):
            return
        try:
            st = os.stat(self.library)
            self._root_watch = self._observer.schedule(_Handler(self), self.library, recursive=True)
            self._root_id = (st.st_dev, st.st_ino)
        except OSError as exc:
            log.debug("lora-workbench: cannot watch %s: %s", self.library, exc)

    # ------------------------------------------------------------------ events (observer thread)
    def _note(self, kind: str, path: str) -> None:
        self.last_events.append({"time": time.time(), "event": kind, "path": path})

    def on_event(self, event, parent_watch: bool = False) -> None:
        kind = event.event_type
        if kind in _IGNORED_EVENT_TYPES or (event.is_directory and kind == "modified"):
            return
        paths = [os.fsdecode(event.src_path)]
        if kind == "moved":
            paths.append(os.fsdecode(event.dest_path))
        now = time.monotonic()
        with self._cond:
            for i, p in enumerate(paths):
                if p == self.library:
                    self._rearm = True
                    self._note(kind, p)
                    self._cond.notify_all()
                    continue
                if parent_watch or not p.startswith(self.library + os.sep):
                    continue
                parts = p[len(self.library) + 1 :].split(os.sep)
                category = parts[0]
                if category not in _LINKED_CATEGORIES or (len(parts) == 1 and not event.is_directory):
                    continue
                if layout.is_partial_download(parts[-1]):
                    continue  # the rename to its final name is the event that counts
                if not event.is_directory:
                    self._track(kind, p, moved_from=kind == "moved" and i == 0, now=now)
                self._first.setdefault(category, now)
                self._last[category] = now
                self._not_before.pop(category, None)
                self._note(kind, p)
                self._cond.notify_all()

    def _track(self, kind: str, path: str, moved_from: bool, now: float) -> None:
        """Note whether `path` is still being written (lock held)."""
        if kind == "closed":  # the writer closed it: complete
            self._close_events = True
            self._growing.pop(path, None)
            return
        if kind == "deleted" or kind == "moved":  # gone, or renamed into place complete
            self._growing.pop(path, None)
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._growing.pop(path, None)
            return
        if kind == "created" and (stat.S_ISLNK(st.st_mode) or st.st_nlink > 1):
            return  # a link made in one step: nothing is being written
        old = self._growing.get(path)
        changed = old is None or (old[0], old[1]) != (st.st_size, st.st_mtime_ns)
        self._growing[path] = (st.st_size, st.st_mtime_ns, now if changed else old[2])

    # ------------------------------------------------------------------ relinking (own thread)
    def _run(self) -> None:
        next_health = time.monotonic() + self.health_interval
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                due = self._due(now)
                health = self._rearm or now >= next_health
                if not due and not health:
                    self._cond.wait(max(0.005, min([next_health, *self._deadlines()]) - now))
                    continue
                for c in due:
                    del self._first[c], self._last[c]
                    self._not_before.pop(c, None)
                waiting = self._unfinished(due, now)
                growing = set(self._growing)
                rearm, self._rearm = self._rearm, False
            try:
                if health:
                    next_health = time.monotonic() + self.health_interval
                    if self._check_root(rearm, growing):
                        continue  # re-armed: a full relink already ran
                if due:
                    self._relink(sorted(due), waiting, "watch:" + ",".join(sorted(due)))
            except Exception as exc:  # the watcher must outlive any single failure
                log.warning("lora-workbench: relink of %s failed: %s", self.library, exc)

    def _due(self, now: float) -> list[str]:
        """The categories to relink now (lock held)."""
        return [
            c
            for c in self._first
            if self._not_before.get(c, 0.0) <= now
            and (now - self._last[c] >= self.debounce or now - self._first[c] >= self.max_delay)
        ]

    def _deadlines(self) -> list[float]:
        return [
            max(
                self._not_before.get(c, 0.0),
                min(self._last[c] + self.debounce, self._first[c] + self.max_delay),
            )
            for c in self._first
        ]

    def _unfinished(self, categories: list[str], now: float) -> set[str]:
        """Files of these categories still being written; their categories are looked at again in
        GROWING_POLL_S. (lock held)"""
        waiting: set[str] = set()
        limit = max(self.quiet, OPEN_QUIET_S) if self._close_events else self.quiet
        for path, (size, mtime, changed_at) in list(self._growing.items()):
            category = path[len(self.library) + 1 :].split(os.sep, 1)[0]
            if category not in categories:
                continue
            try:
                st = os.stat(path)
            except OSError:
                del self._growing[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                self._growing[path] = (st.st_size, st.st_mtime_ns, now)
            elif now - changed_at >= limit:
                del self._growing[path]  # no close came, and it has not changed for the whole window
                continue
            waiting.add(path)
            self._first.setdefault(category, now)
            self._last[category] = now
            self._not_before[category] = now + GROWING_POLL_S
        return waiting

    def _check_root(self, rearm: bool, growing: set[str]) -> bool:
        """Re-arm when the library folder came back (or was replaced); True when it relinked."""
        try:
            st = os.stat(self.library)
            current = (st.st_dev, st.st_ino) if os.path.isdir(self.library) else None
        except OSError:
            current = None
        if current is None:
            if self._root_watch is not None:
                self._arm()  # drops the dead watch
                self._relink(None, growing, "watch:library-missing")
            return False
        if rearm or self._root_watch is None or current != self._root_id:
            self._arm()
            self._relink(None, growing, "watch:library-rearmed")
            return True
        return False

    def _relink(self, categories: list[str] | None, waiting: set[str], trigger: str) -> None:
        with self._cond:
            ui_dirs = dict(self.ui_dirs)
            hook = self.on_report
            roots = self.roots
        plan = library.plan_links(
            self.library, layout.targets_for(ui_dirs, categories), categories, ignore=waiting, roots=roots
        )
        report = library.apply_plan(plan)
        if waiting:
            report.messages.append(f"{len(waiting)} file(s) still being written; linked once complete")
        self.last_report = report
        self.relinks += 1
        events.publish(events.LIBRARY, report.to_dict() | {"library": self.library, "trigger": trigger})
        if hook is not None:
            try:
                hook(report)
            except Exception as exc:
                log.debug("lora-workbench: on_report hook failed: %s", exc)

    def status(self) -> dict:
        with self._cond:
            return {
                "library": self.library,
                "running": self.running,
                "armed": self._root_watch is not None,
                "targets": {k: str(v) for k, v in self.ui_dirs.items()},
                "relinks": self.relinks,
                "last_report": self.last_report.to_dict() if self.last_report else None,
                "last_events": list(self.last_events)[-20:],
            }


class _Handler:
    """A watchdog handler (duck-typed: the observer only calls dispatch)."""

    def __init__(self, watcher: LibraryWatcher, parent_watch: bool = False):
        self.watcher = watcher
        self.parent_watch = parent_watch

    def dispatch(self, event) -> None:
        try:
            self.watcher.on_event(event, self.parent_watch)
        except Exception as exc:
            log.debug("lora-workbench: watch event %r failed: %s", event, exc)


# --------------------------------------------------------------------------- one watcher per library
_registry_lock = threading.Lock()
_watchers: dict[str, LibraryWatcher] = {}
_atexit_registered = False


def _key(library_dir: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(_norm(library_dir)))


def ensure_watcher(
    library_dir: str | os.PathLike,
    ui_dirs: Mapping[str, str | os.PathLike],
    on_report: ReportHook | None = None,
    roots: list[str] | None = None,
    **options,
) -> LibraryWatcher:
    """The running watcher for this library (updated with these targets and roots), or a new one."""
    global _atexit_registered
    key = _key(library_dir)
    with _registry_lock:
        if not _atexit_registered:  # stop cleanly when ComfyUI or the CLI exits
            import atexit

            atexit.register(stop_all)
            _atexit_registered = True
        w = _watchers.get(key)
        if w is not None and w.running:
            w.update(ui_dirs, on_report, roots)
            return w
        w = LibraryWatcher(library_dir, ui_dirs, on_report, roots=roots, **options).start()
        _watchers[key] = w
        return w


def stop_watcher(library_dir: str | os.PathLike) -> bool:
    """Stop this library's watcher; False when none was running."""
    with _registry_lock:
        w = _watchers.pop(_key(library_dir), None)
    if w is None:
        return False
    w.stop()
    return True


def stop_all() -> None:
    with _registry_lock:
        ws = list(_watchers.values())
        _watchers.clear()
    for w in ws:
        w.stop()


def watcher_status() -> list[dict]:
    """One dict per watcher (library, running, targets, last_report, last_events) for the web panel."""
    with _registry_lock:
        ws = list(_watchers.values())
    return [w.status() for w in ws]
