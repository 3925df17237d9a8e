"""What the training node's progress bar previews, the way ComfyUI's samplers preview their latents:
the newest sample image as soon as sd-scripts writes one, else the loss curve while it grows.

`PreviewPicker.next_image(status)` is called on every progress update; it returns a PIL image only
when there is something new to show (a new sample, or more loss points after `interval` seconds),
so the websocket carries a handful of small images per run, not one per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

LOSS_SIZE = (512, 256)


class PreviewPicker:
    """Decides when the progress bar gets a new preview image, and draws it."""

    def __init__(self, interval: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.last_sample = ""
        self.last_points = 0
        self.last_time: float | None = None

    def choose(self, status) -> tuple[str, object] | None:
        """("sample", path) for a new sample, ("loss", points) for a grown curve, else None."""
        samples = [s for s in (getattr(status, "samples", None) or []) if s]
        if samples and samples[-1] != self.last_sample:
            return "sample", samples[-1]
        if self.last_sample:  # once there are samples, the newest one stays on the node
            return None
        losses = list(getattr(status, "losses", None) or [])
        now = self.clock()
        due = self.last_time is None or now - self.last_time >= self.interval
        if len(losses) >= 2 and len(losses) != self.last_points and due:
            return "loss", losses
        return None

    def next_image(self, status):
        """A PIL RGB image to preview now, or None (nothing new, or a sample still being written)."""
        choice = self.choose(status)
        if choice is None:
            return None
        kind, value = choice
        if kind == "sample":
            image = _open_sample(str(value))
            if image is not None:
                self.last_sample = str(value)
            return image
        from . import losscurve

        self.last_points, self.last_time = len(value), self.clock()
        return losscurve.loss_curve_rgb(value, *LOSS_SIZE, title="loss (training)")


def _open_sample(path: str):
    from PIL import Image

    try:
        with Image.open(Path(path)) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError):  # half-written: the next update tries again
        return None
