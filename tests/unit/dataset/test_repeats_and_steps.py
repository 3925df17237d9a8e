"""Repeats three ways (folders, equal, weights), the weights text, and planning by total steps."""

import pytest

from lora_workbench.dataset import prepare, steps
from lora_workbench.dataset.repeats import resolve_mode
from lora_workbench.dataset.weights import format_weights, parse_weights, subject_key
from lora_workbench.errors import ValidationError
from tests.unit.dataset.dataset_fakes import make_subset, opts


@pytest.fixture
def alice_bob(tmp_path):
    """kohya's own example: 10_alice (10 images) and 2_bob (5 images) = 110 items per epoch."""
    root = tmp_path / "p"
    make_subset(root, "10_alice", 10)
    make_subset(root, "2_bob", 5)
    return root


def rows(report):
    return {r["name"]: r for r in report["subsets"]}


# --------------------------------------------------------------------------- the three modes
def test_folders_is_the_default_and_keeps_the_folder_repeats(alice_bob):
    r = prepare.preview(alice_bob, prepare.DatasetOptions(resolution=(64, 64)))
    assert r["repeats_mode"] == "folders"
    assert {n: x["repeats"] for n, x in rows(r).items()} == {"alice": 10, "bob": 2}
    assert r["steps"]["train_items"] == 110  # what sd-scripts prints as num train images * repeats
    assert r["ok"] and not r["issues"]


def test_equal_gives_every_subset_the_same_share(tmp_path):
    # the original weights script's FAQ: 15 images x1 balanced against 5 images x3
    root = tmp_path / "p"
    make_subset(root, "1_fifteen", 15)
    make_subset(root, "1_five", 5)
    r = prepare.preview(root, opts(repeats="equal"))
    got = rows(r)
    assert (got["fifteen"]["repeats"], got["five"]["repeats"]) == (1, 3)
    assert got["fifteen"]["items"] == got["five"]["items"] == 15
    assert r["balance"]["exact"]


def test_weights_sets_the_shares(alice_bob):
    r = prepare.preview(alice_bob, opts("alice: 1\nbob: 3", repeats="weights"))
    got = rows(r)
    assert got["bob"]["share"] == pytest.approx(0.75) and got["alice"]["share"] == pytest.approx(0.25)


def test_a_folder_without_prefix_counts_one_with_a_warning(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "3_Cat", 2)
    make_subset(root, "Dog", 4)
    r = prepare.preview(root, opts())
    assert rows(r)["Dog"]["repeats"] == 1 and rows(r)["Cat"]["repeats"] == 3
    warn = [i for i in r["issues"] if i["code"] == "no-prefix"]
    assert len(warn) == 1 and "counts as 1 repeat" in warn[0]["message"] and warn[0]["severity"] == "warning"


def test_zero_prefix_is_left_out_unless_weighted(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "0_Old", 2)
    make_subset(root, "1_New", 2)
    for mode in ("folders", "equal"):
        r = prepare.preview(root, opts(repeats=mode))
        assert r["ok"] and rows(r)["Old"]["excluded"] and rows(r)["Old"]["repeats"] == 0
        assert any(i["code"] == "zero-prefix" for i in r["issues"])
    r = prepare.preview(root, opts("Old: 1"))
    assert rows(r)["Old"]["repeats"] == 1


def test_weights_text_in_folders_mode_is_reported_unused(alice_bob):
    r = prepare.preview(alice_bob, opts("alice: 3", repeats="folders"))
    assert rows(r)["alice"]["repeats"] == 10
    assert [i["code"] for i in r["issues"]] == ["weights-unused"]


@pytest.mark.parametrize(
    "mode, text, expected",
    [(None, "", "folders"), (None, "  \n", "folders"), (None, "a: 2", "weights"), ("equal", "a: 2", "equal")],
)
def test_a_workflow_saved_before_the_modes_keeps_what_it_trained(mode, text, expected):
    assert resolve_mode(mode, text) == expected


def test_unknown_mode_is_a_clear_error(alice_bob):
    with pytest.raises(ValidationError, match="repeats must be one of folders, equal, weights"):
        prepare.preview(alice_bob, opts(repeats="random"))


# --------------------------------------------------------------------------- weights text
def test_parse_weights_lines_prefixes_comments_and_json():
    text = "# my weights\nCat: 2\n3_Dog: 1.5   # folder name works too\n\nBird = 0\nTwo words: 1\n"
    assert parse_weights(text) == {"Cat": 2.0, "Dog": 1.5, "Bird": 0.0, "Two words": 1.0}
    assert parse_weights('{"Cat": 2, "3_Dog": 1}') == {"Cat": 2.0, "Dog": 1.0}
    assert parse_weights("") == {}
    w = {"Cat": 2.0, "Dog": 0.5, "tiny": 1e-320, "huge": 1e308}
    assert parse_weights(format_weights(w)) == w


@pytest.mark.parametrize(
    "text, needle",
    [
        ("Cat: 2\nDog two\n", "Line 2 of the weights, 'Dog two', is not `Subject: weight`"),
        ("Cat: lots\n", "Line 1 of the weights, 'Cat: lots': 'lots' is not a number"),
        ("Cat: -1\n", "must be a finite number >= 0"),
        ("Cat: nan\n", "must be a finite number >= 0"),
        ("Cat: 1e999\n", "must be a finite number >= 0"),
        ("Cat: 1\n2_Cat: 2\n", "'Cat' is given twice"),
        (" Cat : 1\nCat: 2\n", "'Cat' is given twice"),
        ('{"Cat": 1, "Cat": 2}', "'Cat' is given twice"),
        ('{"Cat": true}', "is not a number"),
        ('{"Cat": [1]}', "is not a number"),
        ("{broken", "not valid"),
        ('["Cat", 1]', "is not `Subject: weight`"),
    ],
)
def test_parse_weights_errors_name_the_line(text, needle):
    with pytest.raises(ValidationError) as exc:
        parse_weights(text)
    assert needle in str(exc.value)


def test_a_subject_with_surrounding_spaces_can_be_weighted(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_ Alice ", 2)
    make_subset(root, "1_Bob", 2)
    assert subject_key("3_ Alice ") == "Alice"
    r = prepare.preview(root, opts("Alice: 3"))
    assert r["ok"], r["issues"]
    got = rows(r)
    assert got[" Alice "]["weight"] == 3 and got[" Alice "]["share"] == pytest.approx(0.75)


def test_two_folders_that_differ_only_by_spaces_are_one_subject_twice(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_Alice", 1)
    make_subset(root, "2_Alice ", 1)
    r = prepare.preview(root, opts())
    assert any(i["code"] == "duplicate-subject" for i in r["issues"]) and not r["ok"]


# --------------------------------------------------------------------------- steps
def test_step_math_counts_like_kohya():
    plan = steps.step_math(42, False, 2, 3)
    assert (plan.items_per_epoch, plan.steps_per_epoch, plan.total_steps) == (42, 21, 63)
    assert steps.step_math(42, True, 4, 1).steps_per_epoch == 21  # x2 with regularization


def test_target_steps_exact_when_possible(alice_bob):
    r = prepare.preview(alice_bob, opts(target_steps=2530))
    st = r["steps"]
    assert (st["epochs"], st["total_steps"], st["target_steps"]) == (23, 2530, 2530)
    assert {n: x["repeats"] for n, x in rows(r).items()} == {"alice": 10, "bob": 2}  # the folders' own
    assert "x 23 epochs = 2530 steps (target 2530: exactly)" in r["summary"]


def test_target_steps_closest_otherwise_and_says_by_how_much(alice_bob):
    r = prepare.preview(alice_bob, opts(target_steps=2500))
    st = r["steps"]
    assert abs(st["total_steps"] - 2500) == 25  # every total is a multiple of 55 here
    assert st["total_steps"] == st["steps_per_epoch"] * st["epochs"]
    got = rows(r)
    assert got["alice"]["repeats"] == 5 * got["bob"]["repeats"]  # the shares stay 10:2
    assert "(target 2500: 25 under; repeats scaled /2)" in r["summary"]


def test_target_steps_scales_repeats_up_to_fill_batches(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_a", 3)
    # 3 items / batch 2 = 2 steps per epoch: totals 2, 4, 6 ... never 3; doubling the repeats gives 3
    reps, plan = steps.plan_target([3], [1], False, 2, 3, 10_000)
    assert reps == [2] and (plan.steps_per_epoch, plan.epochs, plan.total_steps) == (3, 1, 3)


@pytest.mark.parametrize("target", [1, 7, 55, 999, 2500, 123_457])
@pytest.mark.parametrize("batch, reg", [(1, False), (3, True)])
def test_target_plans_never_give_zero_repeats_and_beat_plain_epochs(target, batch, reg):
    counts, own = [10, 5, 7], [10, 2, 4]
    reps, plan = steps.plan_target(counts, own, reg, batch, target, 10_000)
    assert all(r >= 1 for r in reps) and plan.epochs >= 1
    assert plan.total_steps == plan.epochs * plan.steps_per_epoch
    assert sum(c * r for c, r in zip(counts, reps, strict=False)) <= 10_000
    ratio = [r / reps[0] for r in reps]
    assert ratio == pytest.approx([o / own[0] for o in own])  # the shares are kept
    plain = steps.step_math(
        sum(c * o for c, o in zip(counts, own, strict=False)), reg, batch, 1
    ).steps_per_epoch
    best_plain = min(abs(e * plain - target) for e in range(1, target // plain + 2))
    assert abs(plan.total_steps - target) <= best_plain


def test_target_with_weights_keeps_one_epoch_within_the_target(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_a", 7)
    make_subset(root, "1_b", 3)
    r = prepare.preview(root, opts("a: 1\nb: 1.37", target_steps=100))
    assert r["steps"]["total_steps"] == pytest.approx(100, abs=10)
    assert all(x["repeats"] >= 1 for x in r["subsets"])
