"""A tiny in-process event bus: the core publishes progress and reports, adapters forward them.

The runner and the library watcher publish here without knowing about ComfyUI; the ComfyUI adapter
subscribes and forwards to the browser (PromptServer.send_sync); the HTTP routes read `latest()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# Event names (also the websocket message types the web extension listens for).
TRAIN = "lora_workbench.train"  # training progress: see runner.TrainStatus.to_dict()
LIBRARY = "lora_workbench.library"  # a relink report: see library.LinkReport.to_dict()
DATASET = "lora_workbench.dataset"  # a dataset summary after DatasetSubsetWeights ran

Listener = Callable[[str, dict], None]

_lock = threading.Lock()
_listeners: list[Listener] = []
_latest: dict[str, dict] = {}


def publish(event: str, data: dict) -> None:
    """Record `data` as the latest for `event` and hand it to every listener (errors are swallowed)."""
    with _lock:
        _latest[event] = data
        listeners = list(_listeners)
    for fn in listeners:
        try:
            fn(event, data)
        except Exception:  # a broken listener must never break training or linking
            pass


def subscribe(fn: Listener) -> Callable[[], None]:
    """Add a listener; returns a function that removes it."""
    with _lock:
        _listeners.append(fn)

    def unsubscribe() -> None:
        with _lock:
            if fn in _listeners:
                _listeners.remove(fn)

    return unsubscribe


def subscribed(fn: Listener) -> bool:
    """Whether `fn` is a listener now."""
    with _lock:
        return fn in _listeners


def latest(event: str) -> dict | None:
    """The last data published for `event`, or None."""
    with _lock:
        return _latest.get(event)


def clear() -> None:
    """Forget listeners and latest values (tests)."""
    with _lock:
        _listeners.clear()
        _latest.clear()
