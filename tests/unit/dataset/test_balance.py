"""Weights -> repeats: exact shares when they fit, never 0 repeats, never worse than the seed's rule."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_workbench.dataset import balance


def test_seven_and_three_at_equal_weight_are_exact_where_the_seed_is_not():
    counts = {"A": 7, "B": 3}
    seed = balance.seed_repeats(counts, {})
    assert seed == {"A": 1, "B": 2}  # 7 vs 6 items: the seed's floor()
    r = balance.balance_repeats(counts, {})
    assert r.repeats == {"A": 3, "B": 7}  # 21 vs 21
    assert r.exact and r.max_error == 0
    assert [s.items for s in r.subsets] == [21, 21]
    assert max(abs(e) for e in balance.evaluate(counts, {}, seed)) > 0.03


def test_faq_example_fifteen_by_one_equals_five_by_three():
    r = balance.balance_repeats({"big": 15, "small": 5}, {"big": 1, "small": 1})
    assert r.repeats == {"big": 1, "small": 3}


def test_weights_set_the_shares():
    r = balance.balance_repeats({"A": 10, "B": 10, "C": 5}, {"A": 2, "B": 1, "C": 1})
    assert r.exact
    shares = {s.name: round(s.share, 6) for s in r.subsets}
    assert shares == {"A": 0.5, "B": 0.25, "C": 0.25}


def test_weight_zero_excludes_and_empty_subsets_keep_one_repeat():
    r = balance.balance_repeats({"A": 4, "B": 6, "E": 0}, {"A": 1, "B": 0, "E": 1})
    by = {s.name: s for s in r.subsets}
    assert by["B"].excluded and by["B"].repeats == 0
    assert by["E"].empty and by["E"].repeats == 1
    assert by["A"].repeats == 1 and by["A"].share == 1.0


def test_seed_rule_can_give_zero_repeats_ours_never_does():
    counts, weights = {"big": 100, "small": 10}, {"big": 0.5, "small": 1}
    assert balance.seed_repeats(counts, weights)["big"] == 0
    r = balance.balance_repeats(counts, weights)
    assert all(s.repeats >= 1 for s in r.subsets)


def test_budget_limits_items_and_reports_the_approximation():
    counts = {"a": 3, "b": 7, "c": 11, "d": 13, "e": 17}  # exact needs lcm-sized repeats
    r = balance.balance_repeats(counts, {}, max_items_per_epoch=500)
    assert r.total_items <= 500
    assert not r.exact and r.notes
    assert r.max_error < 0.02


def test_over_budget_with_one_repeat_each_is_flagged():
    r = balance.balance_repeats({"a": 300, "b": 400}, {}, max_items_per_epoch=100)
    assert r.over_budget and r.repeats == {"a": 1, "b": 1}


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="weight"):
        balance.balance_repeats({"a": 3}, {"a": -1})


def test_random_datasets_never_zero_repeats_bounded_error_and_never_worse_than_seed():
    rng = random.Random(1234)
    worse = 0
    for _ in range(300):
        n = rng.randint(1, 8)
        counts = {f"s{i}": rng.randint(1, 300) for i in range(n)}
        weights = {k: rng.choice([0.5, 1, 1, 2, 3, round(rng.uniform(0.1, 5), 2)]) for k in counts}
        budget = rng.choice([None, 2000, 10_000])
        r = balance.balance_repeats(counts, weights, budget)
        assert all(s.repeats >= 1 for s in r.subsets)
        if not r.over_budget:
            assert r.total_items <= r.budget
        # never worse than 1 repeat each; and within 5% once the budget allows >= 20 repeats for the
        # subset that needs the fewest (rounding then moves each share by at most ~1/40 relative)
        ones = max(abs(e) for e in balance.evaluate(counts, weights, {k: 1 for k in counts}))
        assert r.max_error <= ones + 1e-12
        q = {k: weights[k] / counts[k] for k in counts}
        base = sum(counts[k] * q[k] / min(q.values()) for k in counts)
        if r.budget >= 20 * base:
            assert r.max_error <= 0.05, (counts, weights, budget, r.to_dict())
        seed = balance.seed_repeats(counts, weights)
        seed_items = sum(counts[k] * seed[k] for k in counts)
        if all(v >= 1 for v in seed.values()) and seed_items <= r.budget:
            seed_err = max(abs(e) for e in balance.evaluate(counts, weights, seed))
            if r.max_error > seed_err + 1e-12:
                worse += 1
    assert worse == 0


def test_result_serialises():
    d = balance.balance_repeats({"A": 7, "B": 3}, {}).to_dict()
    assert d["total_items"] == 42 and d["subsets"][0]["items"] == 21 and d["exact"] is True


# --------------------------------------------------------------------------- tiny and huge weights
@pytest.mark.parametrize(
    "weights",
    [
        {"A": 1e-5, "B": 1e-5},  # raised ZeroDivisionError before
        {"A": 1e-320, "B": 1},
        {"A": 5e-324, "B": 5e-324},
        {"A": 1e308, "B": 1},
        {"A": 1e308, "B": 1e308},
        {"A": 1e-320, "B": 1e308},
    ],
)
def test_tiny_and_huge_weights_never_raise_and_never_give_zero_repeats(weights):
    r = balance.balance_repeats({"A": 7, "B": 3}, weights)
    assert all(s.repeats >= 1 for s in r.subsets) and r.total_items <= r.budget
    if weights["A"] == weights["B"]:
        assert r.exact and r.repeats == {"A": 3, "B": 7}


# --------------------------------------------------------------------------- properties
weights_st = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.01, max_value=100),
    st.sampled_from([1e-320, 5e-324, 1e-5, 1e308, 1.7e308, 1.0, 2.0, 3.0]),
)
dataset_st = st.lists(st.tuples(st.integers(0, 300), weights_st), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(dataset_st, st.sampled_from([None, 50, 500, 2000, 10_000]))
def test_property_no_zero_repeats_within_budget_never_raises(data, budget):
    counts = {f"s{i}": c for i, (c, _) in enumerate(data)}
    weights = {f"s{i}": w for i, (_, w) in enumerate(data)}
    r = balance.balance_repeats(counts, weights, budget)
    for s in r.subsets:
        if weights[s.name] > 0:
            assert s.repeats >= 1, r.to_dict()
        else:
            assert s.repeats == 0 and s.excluded
    if not r.over_budget:
        assert r.total_items <= r.budget
    else:
        assert all(s.repeats == 1 for s in r.subsets if not s.excluded)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 300), st.floats(0.05, 20)), min_size=1, max_size=8),
    st.sampled_from([2000, 10_000, 50_000]),
)
def test_property_shares_within_the_documented_error(data, budget):
    """README/balance.py: with s = (budget - images/2) / base, where base is the epoch's size when the
    subset needing the fewest repeats gets 1 and the others their exact proportion, every share is
    within share / (s - 1/2) of its target (so the max error is at most max share / (s - 1/2))."""
    counts = {f"s{i}": c for i, (c, _) in enumerate(data)}
    weights = {f"s{i}": w for i, (_, w) in enumerate(data)}
    r = balance.balance_repeats(counts, weights, budget)
    if r.exact:
        assert r.max_error < 1e-12
        return
    q = {k: weights[k] / counts[k] for k in counts}
    low = min(q.values())
    base = sum(counts[k] * q[k] / low for k in counts)
    s = (budget - sum(counts.values()) / 2) / base
    if r.over_budget or s <= 1:
        return
    top_share = max(weights.values()) / sum(weights.values())
    assert r.max_error <= top_share / (s - 0.5) + 1e-9, (r.to_dict(), s)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 5)), min_size=1, max_size=5))
def test_property_exact_whenever_the_exact_answer_fits(data):
    from fractions import Fraction
    from math import gcd, lcm

    counts = {f"s{i}": c for i, (c, _) in enumerate(data)}
    weights = {f"s{i}": float(w) for i, (_, w) in enumerate(data)}
    qs = [Fraction(int(weights[k])) / counts[k] for k in counts]
    unit = Fraction(gcd(*[q.numerator for q in qs]), lcm(*[q.denominator for q in qs]))
    items = sum(counts[k] * int(q / unit) for k, q in zip(counts, qs, strict=False))
    r = balance.balance_repeats(counts, weights)
    if items <= r.budget:
        assert r.exact and r.total_items == items
