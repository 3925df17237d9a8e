"""The ranges of the dataset's numbers: one source for the node's widgets, the HTTP preview route and
DatasetOptions.checked (the CLI), so no entry point lets through what another refuses."""

from __future__ import annotations

from ..errors import ValidationError

# name: (lowest, highest). epochs matches the trainer's epochs setting (a test holds them equal): a
# target-steps plan hands its epochs to the trainer. max_items_per_epoch 0 means the default budget.
LIMITS: dict[str, tuple[int, int]] = {
    "width": (64, 8192),
    "height": (64, 8192),
    "batch_size": (1, 256),
    "epochs": (1, 10_000),
    "max_items_per_epoch": (0, 10_000_000),
    "target_steps": (0, 10_000_000),
}


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
