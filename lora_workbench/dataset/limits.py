"""The ranges of the dataset's numbers: one source for the node's widgets, the HTTP preview route and
DatasetOptions.checked (the CLI), so no entry point lets through what another refuses."""

from __future__ import annotations

from ..errors import ValidationError
from ..training.settings import SETTING


def _trainers(name: str, low: int) -> tuple[int, int]:
    """The trainer's highest value; the lowest is the dataset's own (the trainer's 0 means 'the dataset's')."""
    return low, int(SETTING[name].high)


# name: (lowest, highest). Epochs and the resolution are the trainer's settings' own ranges: a
# target-steps plan hands its epochs to the trainer. max_items_per_epoch 0 means the default budget.
LIMITS: dict[str, tuple[int, int]] = {
    "width": _trainers("width", 64),
    "height": _trainers("height", 64),
    "batch_size": (1, 256),
    "epochs": _trainers("epochs", 1),
    "max_items_per_epoch": (0, 10_000_000),
    "target_steps": (0, 10_000_000),
    "folder_repeats": (1, 10_000),
}


def widget_range(name: str) -> dict[str, int]:
    """`min` and `max` of a node widget, from the same range."""
    low, high = LIMITS[name]
    return {"min": low, "max": high}


def check(name: str, value) -> int:
    """`value` as an int within its range; ValidationError names the value and the range otherwise."""
    low, high = LIMITS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number != value or not low <= number <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}, not {value!r}.")
    return number
