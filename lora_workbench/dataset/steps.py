"""Step math as sd-scripts counts it, and planning by a total number of steps.

sd-scripts trains `images x repeats` items per epoch over the training subsets, twice that with
regularization images (it cycles them to match), in batches: steps per epoch = ceil(items / batch)
with one bucket (buckets off); aspect-ratio buckets round up per bucket and may add a few.

`plan_target` answers "I want about T steps": it picks the number of epochs and a multiple of the
repeats (the same shares, scaled up or down, within the step budget) whose total lands closest to T.
Ties keep the repeats nearest to the ones asked for, then the smaller repeats (more epochs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class StepPlan:
    """Items, steps per epoch, epochs and the total; with a target, what was asked and how close."""

    train_items: int  # images x repeats over the training subsets
    regularization: bool
    items_per_epoch: int  # x2 with regularization
    batch_size: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    target_steps: int = 0  # 0: no target (the epochs were given)
    scale: str = ""  # "x2", "/2", "x3/2" when the repeats were scaled for the target

    @property
    def planned(self) -> bool:
        return self.target_steps > 0

    def to_dict(self) -> dict:
        return asdict(self) | {"planned": self.planned}


def step_math(train_items: int, has_reg: bool, batch_size: int, epochs: int) -> StepPlan:
    """Items and steps as kohya counts them for a given number of epochs."""
    batch = max(1, int(batch_size))
    items = int(train_items) * (2 if has_reg else 1)
    per_epoch = math.ceil(items / batch)
    epochs = max(1, int(epochs))
    return StepPlan(int(train_items), bool(has_reg), items, batch, per_epoch, epochs, per_epoch * epochs)


def _epochs_near(target: int, per_epoch: int) -> list[int]:
    low = max(1, target // per_epoch) if per_epoch else 1
    return [low, low + 1]


def plan_target(
    counts: list[int], repeats: list[int], has_reg: bool, batch_size: int, target: int, budget: int
) -> tuple[list[int], StepPlan]:
    """Repeats (a multiple of `repeats`' shares) and epochs whose total steps come closest to `target`.

    Every repeat stays >= 1; items per epoch stay within `budget` unless `repeats` already exceeds it
    (then they are not scaled up). Returns the repeats and the plan.
    """
    if not counts or target <= 0:
        raise ValueError("plan_target needs subsets and a target above 0")
    own = math.gcd(*repeats)
    base = [r // own for r in repeats]
    base_items = sum(c * b for c, b in zip(counts, base, strict=True))
    regf = 2 if has_reg else 1
    batch = max(1, int(batch_size))
    # beyond one epoch of `target` steps a larger multiple only moves away from the target
    reach = target * batch // max(1, base_items * regf) + 1
    top = max(own, min(max(1, budget // base_items), reach))
    search = _Multiples(base_items * regf, batch, top)
    best: tuple | None = None
    for m in sorted({search.nearest(p, own) for p in search.candidate_steps(target)}):
        per_epoch = search.steps(m)
        for epochs in _epochs_near(target, per_epoch):
            key = (abs(epochs * per_epoch - target), abs(m - own), m)
            if best is None or key < best[0]:
                best = (key, m, epochs)
    assert best is not None
    _, m, epochs = best
    plan = step_math(m * base_items, has_reg, batch, epochs)
    plan.target_steps = int(target)
    plan.scale = _scale_text(m, own)
    return [b * m for b in base], plan


@dataclass(frozen=True)
class _Multiples:
    """Steps per epoch p(m) = ceil(m * items / batch) for the multiples m = 1..top, searched by arithmetic.

    p(m) never decreases with m, so the multiples giving one p form a run, and the p values in a range
    are found by division instead of stepping through every m (a budget of 10^7 is no longer 10^7 steps).
    """

    items: int  # items per epoch at multiple 1 (regularization included)
    batch: int
    top: int

    def steps(self, m: int) -> int:
        return -(-m * self.items // self.batch)

    def nearest(self, p: int, own: int) -> int:
        """Of the multiples whose steps per epoch are p, the one closest to `own`."""
        first = max(1, (p - 1) * self.batch // self.items + 1)
        last = min(self.top, p * self.batch // self.items)
        return min(max(own, first), last)

    def _first_at_least(self, p: int) -> int | None:
        m = max(1, (p - 1) * self.batch // self.items + 1)
        return self.steps(m) if m <= self.top else None

    def _last_at_most(self, p: int) -> int | None:
        m = min(self.top, p * self.batch // self.items)
        return self.steps(m) if m >= 1 else None

    def candidate_steps(self, target: int) -> set[int]:
        """Every steps-per-epoch value that can be closest to `target` (with the best epochs).

        Where target // p is one number q, the distance min(target - q*p, (q+1)*p - target) rises and
        then falls with p: only the smallest and largest p of each such block can be closest. Above the
        target one epoch is best and the distance only grows: the first p there. O(sqrt(target)) blocks.
        """
        found = {self._first_at_least(target + 1)}
        low, highest = 1, min(target, self.steps(self.top))
        while low <= highest:
            high = target // (target // low)
            first, last = self._first_at_least(low), self._last_at_most(high)
            if first is not None and first <= high:
                found.update((first, last))
            low = high + 1
        found.discard(None)
        return found


def _scale_text(m: int, own: int) -> str:
    if m == own:
        return ""
    g = math.gcd(m, own)
    num, den = m // g, own // g
    return f"x{num}" if den == 1 else f"/{den}" if num == 1 else f"x{num}/{den}"
