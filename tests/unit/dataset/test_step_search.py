"""The target-steps search finds its candidates by arithmetic: same answers as stepping through every
multiple (the old loop, kept here as the reference), without its cost on a large step budget."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_workbench.dataset import steps


def reference_plan(counts, repeats, has_reg, batch_size, target, budget):
    """The search as it was: every multiple 1..top, both epochs near the target, the smallest key."""
    own = math.gcd(*repeats)
    base = [r // own for r in repeats]
    base_items = sum(c * b for c, b in zip(counts, base, strict=True))
    regf = 2 if has_reg else 1
    batch = max(1, int(batch_size))
    reach = target * batch // max(1, base_items * regf) + 1
    top = max(own, min(max(1, budget // base_items), reach))
    best = None
    for m in range(1, top + 1):
        per_epoch = math.ceil(m * base_items * regf / batch)
        low = max(1, target // per_epoch)
        for epochs in (low, low + 1):
            key = (abs(epochs * per_epoch - target), abs(m - own), m)
            if best is None or key < best[0]:
                best = (key, m, epochs)
    _, m, epochs = best
    return [b * m for b in base], epochs


def assert_same(counts, repeats, has_reg, batch, target, budget):
    reps, plan = steps.plan_target(counts, repeats, has_reg, batch, target, budget)
    assert (reps, plan.epochs) == reference_plan(counts, repeats, has_reg, batch, target, budget)
    assert plan.total_steps == plan.epochs * plan.steps_per_epoch


@settings(max_examples=1500, deadline=None)
@given(
    counts=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    shares=st.lists(st.integers(1, 12), min_size=4, max_size=4),
    scale=st.integers(1, 6),
    has_reg=st.booleans(),
    batch=st.sampled_from([1, 2, 3, 4, 7, 8, 16, 64, 256]),
    target=st.integers(1, 30_000),
    budget=st.integers(1, 20_000),
)
def test_same_plan_as_stepping_through_every_multiple(counts, shares, scale, has_reg, batch, target, budget):
    repeats = [s * scale for s in shares[: len(counts)]]
    assert_same(counts, repeats, has_reg, batch, target, budget)


def test_same_plan_on_hand_picked_edges():
    cases = [
        ([3], [1], False, 2, 3, 10_000),  # doubling fills the batches
        ([10, 5], [10, 2], False, 1, 2500, 10_000),  # kohya's alice/bob
        ([1], [1], False, 256, 1, 10_000),  # many multiples share one step per epoch
        ([1], [7], True, 256, 99_991, 300_000),  # a prime target, many multiples allowed
        ([500], [40], True, 1, 5, 100),  # repeats beyond the budget, one epoch is above the target
        ([1], [1], False, 1, 100_000, 100_000),
    ]
    for case in cases:
        assert_same(*case)


def test_a_large_budget_costs_no_more_than_a_small_one(monkeypatch):
    # one image, batch 1024, the widest budget and target: the old loop stepped through 10^7 multiples
    _, plan = steps.plan_target([1], [1], False, 1024, 10_000_000, 10_000_000)
    assert plan.total_steps == 10_000_000
    calls = []
    original = steps._Multiples.steps

    def counted(self, m):
        calls.append(m)
        return original(self, m)

    monkeypatch.setattr(steps._Multiples, "steps", counted)
    steps.plan_target([1], [1], False, 1024, 9_999_991, 10_000_000)
    assert len(calls) < 20_000  # O(sqrt(target)) blocks, not one per multiple
