"""One set of ranges for the dataset's numbers: the node's widgets, the HTTP route (tested with the
routes) and DatasetOptions.checked (the CLI) all refuse what lies outside them, with the value named."""

import pytest

from lora_workbench.dataset import limits, prepare
from lora_workbench.errors import ValidationError
from lora_workbench.training.settings import SETTING


@pytest.mark.parametrize("name, low", [("epochs", 1), ("width", 64), ("height", 64)])
def test_the_numbers_the_trainer_also_has_use_its_ranges(name, low):
    # a target-steps plan hands its epochs to the trainer: the dataset may not plan what it refuses;
    # the trainer's 0 means "the dataset's", so the dataset's own lowest value is above it
    assert limits.LIMITS[name] == (low, SETTING[name].high) and SETTING[name].low == 0


def options(name, value) -> prepare.DatasetOptions:
    if name in ("width", "height"):
        size = {"width": 512, "height": 512} | {name: value}
        return prepare.DatasetOptions(resolution=(size["width"], size["height"]))
    return prepare.DatasetOptions(**{name: value})


@pytest.mark.parametrize("name", sorted(limits.LIMITS))
def test_checked_options_refuse_numbers_outside_the_ranges(name):
    low, high = limits.LIMITS[name]
    assert options(name, high).checked() is not None
    for bad in (low - 1, high + 1, 10**9, 2.5, "7", True):
        if name == "max_items_per_epoch" and bad in (0, False):
            continue
        with pytest.raises(ValidationError, match=name):
            options(name, bad).checked()


def test_no_budget_is_the_default_budget():
    assert options("max_items_per_epoch", 0).checked().max_items_per_epoch is None
    assert options("max_items_per_epoch", None).checked().max_items_per_epoch is None
