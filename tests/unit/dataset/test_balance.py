"""Weights -> repeats: exact shares when they fit, never 0 repeats, never worse than the seed's rule."""

import random

import pytest

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
