"""The step plan the dataset node shows is what the trainer's command runs (issue 13): the LoraDataset
carries the planned epochs, train.plan puts them into sd-scripts' config (steps, or epochs with
step_rule=epochs) and says the epochs setting is not used; `dataset apply` -> `train` keeps it too."""

from __future__ import annotations

import dataclasses

import pytest

from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.errors import ValidationError
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes
from tests.unit.dataset.dataset_fakes import make_subset, opts


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    train_fakes.make_kohya(tmp_path, monkeypatch)
    root = tmp_path / "proj"
    make_subset(root, "10_alice", 10)
    make_subset(root, "2_bob", 5)
    ckpt = train_fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", train_fakes.sd1_tensors())
    return root, ckpt


def training(config: dict) -> dict:
    return config.get("training", {})


def test_the_trainer_runs_the_planned_total(setup):
    root, ckpt = setup
    ds, text = prepare.prepare_dataset(root, opts(target_steps=2530))
    assert (ds.planned_epochs, ds.steps_per_epoch) == (23, 110) and "= 2530 steps" in text
    p = train.plan(TrainOptions(epochs=3, width=64, height=64, device="cpu", launcher="python"), ds, ckpt)
    assert p.job.total_steps == 2530 and training(p.job.config)["max_train_steps"] == 2530
    assert any("23 epochs from the dataset's step plan (target 2530 steps)" in w for w in p.job.warnings)
    by_epochs = TrainOptions(
        epochs=3, width=64, height=64, device="cpu", launcher="python", step_rule="epochs"
    )
    assert training(train.plan(by_epochs, ds, ckpt).job.config)["max_train_epochs"] == 23


def test_without_a_target_the_trainer_keeps_its_epochs(setup):
    root, ckpt = setup
    ds, _ = prepare.prepare_dataset(root, opts())
    assert ds.planned_epochs == 0
    p = train.plan(TrainOptions(epochs=3, width=64, height=64, device="cpu", launcher="python"), ds, ckpt)
    assert p.job.total_steps == 330 and not any("step plan" in w for w in p.job.warnings)


def test_max_train_steps_set_by_hand_still_wins(setup):
    root, ckpt = setup
    ds, _ = prepare.prepare_dataset(root, opts(target_steps=2530))
    hand = TrainOptions(epochs=3, width=64, height=64, device="cpu", launcher="python", max_train_steps=7)
    assert train.plan(hand, ds, ckpt).job.total_steps == 7


def test_the_plan_survives_dataset_apply_then_train(setup):
    root, ckpt = setup
    prepare.prepare_dataset(root, opts(target_steps=2500))
    ds = dataset_toml.load_project_dataset(root)
    assert (ds.planned_epochs, ds.target_steps, ds.steps_per_epoch) == (45, 2500, 55)
    p = train.plan(TrainOptions(epochs=3, width=64, height=64, device="cpu", launcher="python"), ds, ckpt)
    assert p.job.total_steps == 2475


# --------------------------------------------------------------------------- a plan out of range
def with_plan(root, line: str):
    """The project's dataset.toml with its plan comment replaced (as an attacker or a hand edit would)."""
    toml = root / "dataset.toml"
    lines = toml.read_text().splitlines()
    lines = [line if x.startswith("# lora-workbench plan = ") else x for x in lines]
    toml.write_text("\n".join(lines) + "\n")
    return toml


@pytest.mark.parametrize("epochs", [-7, 0, 10_001, 100_000_000])
def test_a_plan_comment_out_of_range_is_refused_when_read_naming_file_and_value(setup, epochs):
    root, _ = setup
    prepare.prepare_dataset(root, opts(target_steps=2500))
    toml = with_plan(root, f'# lora-workbench plan = {{"epochs": {epochs}, "target_steps": 2500}}')
    with pytest.raises(ValidationError) as exc:
        dataset_toml.load_project_dataset(root)
    assert str(toml) in str(exc.value) and f"epochs = {epochs}" in str(exc.value)


@pytest.mark.parametrize(
    "plan",
    [
        '{"epochs": ' + "[" * 100_000 + "]" * 100_000 + ', "target_steps": 5}',  # RecursionError before
        '{"epochs": "45", "target_steps": 2500}',
        '{"epochs": true, "target_steps": 2500}',
        '{"epochs": 45, "target_steps": -1}',
        "[45, 2500]",
        "{not json",
    ],
)
def test_an_unreadable_plan_comment_is_a_clear_error(setup, plan):
    root, _ = setup
    prepare.prepare_dataset(root, opts(target_steps=2500))
    toml = with_plan(root, "# lora-workbench plan = " + plan)
    with pytest.raises(ValidationError, match="step plan") as exc:
        dataset_toml.load_project_dataset(root)
    assert str(toml) in str(exc.value)


def test_the_trainer_validates_the_epochs_a_plan_hands_it(setup):
    root, ckpt = setup
    ds, _ = prepare.prepare_dataset(root, opts(target_steps=2500))
    base = TrainOptions(epochs=3, width=64, height=64, device="cpu", launcher="python")
    for epochs in (-7, 100_000_000):  # a LoraDataset built by hand or by another tool
        bad = dataclasses.replace(ds, planned_epochs=epochs)
        with pytest.raises(ValidationError, match=f"step plan .* asks for {epochs} epochs"):
            train.plan(base, bad, ckpt)


def test_the_dataset_node_refuses_a_plan_beyond_the_trainers_epochs(tmp_path):
    root = tmp_path / "one"
    make_subset(root, "1_x", 1)
    r = prepare.preview(root, opts(target_steps=10_000_000, batch_size=256, max_items_per_epoch=10_000_000))
    errors = [i for i in r["issues"] if i["severity"] == "error"]
    assert [i["code"] for i in errors] == ["plan-epochs"]
    assert "at most 10000 epochs" in errors[0]["message"] and "at most 10000 with" in errors[0]["message"]
    with pytest.raises(ValidationError, match="at most 10000 epochs"):
        prepare.prepare_dataset(root, opts(target_steps=10_000_000, batch_size=256))
