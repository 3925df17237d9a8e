"""Each knob lives in one place (issue 19): the trainer takes resolution, batch size and epochs from the
dataset node unless it sets them itself (0 = the dataset's), and says which it used. `dataset apply`
-> `train` keeps the dataset's epochs too (dataset.toml records them)."""

from __future__ import annotations

import pytest

from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.errors import ValidationError
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes
from tests.unit.dataset.dataset_fakes import make_subset, opts

CPU = {"device": "cpu", "launcher": "python"}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    train_fakes.make_kohya(tmp_path, monkeypatch)
    root = tmp_path / "proj"
    make_subset(root, "2_alice", 6, size=(128, 64))
    ckpt = train_fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", train_fakes.sd1_tensors())
    return root, ckpt


def dataset(root, **kw):
    ds, _ = prepare.prepare_dataset(root, opts(res=(128, 64), batch_size=2, epochs=7, **kw))
    return ds


def config(p) -> dict:
    return p.job.config


def test_the_trainer_takes_resolution_batch_size_and_epochs_from_the_dataset(setup):
    root, ckpt = setup
    p = train.plan(TrainOptions(**CPU), dataset(root), ckpt)
    assert config(p)["dataset"]["resolution"] == "128,64" and config(p)["dataset"]["train_batch_size"] == 2
    assert p.job.total_steps == 6 * 7  # 12 items / batch 2 = 6 steps per epoch, 7 epochs
    assert (
        "From the dataset: resolution 128x64, batch size 2, 7 epochs (set them on the trainer to override)."
        in p.job.warnings
    )


def test_values_set_on_the_trainer_win_and_are_not_said_to_come_from_the_dataset(setup):
    root, ckpt = setup
    mine = TrainOptions(width=64, height=64, batch_size=1, epochs=2, **CPU)
    p = train.plan(mine, dataset(root), ckpt)
    assert config(p)["dataset"]["resolution"] == "64,64" and p.job.total_steps == 12 * 2
    assert not any(w.startswith("From the dataset") for w in p.job.warnings)
    assert any("training runs at 64x64 as set on the trainer" in w for w in p.job.warnings)


def test_a_step_plan_sets_the_epochs_without_blaming_an_unset_epochs_setting(setup):
    root, ckpt = setup
    p = train.plan(TrainOptions(**CPU), dataset(root, target_steps=60), ckpt)
    assert p.job.total_steps == 60
    assert "10 epochs from the dataset's step plan (target 60 steps)." in p.job.warnings


def test_dataset_apply_then_train_keeps_the_datasets_epochs(setup):
    root, ckpt = setup
    dataset(root)
    ds = dataset_toml.load_project_dataset(root)
    assert ds.epochs == 7
    assert train.plan(TrainOptions(**CPU), ds, ckpt).job.total_steps == 42


def test_a_dataset_toml_without_epochs_trains_three_and_says_so(setup):
    root, ckpt = setup
    ds = dataset(root)
    toml = root / "dataset.toml"
    toml.write_text("\n".join(x for x in toml.read_text().splitlines() if "epochs =" not in x) + "\n")
    p = train.plan(TrainOptions(**CPU), dataset_toml.load_project_dataset(root), ckpt)
    assert p.job.total_steps == 3 * ds.steps_per_epoch
    assert any("3 epochs (the dataset records none" in w for w in p.job.warnings)


@pytest.mark.parametrize("value", ["0", "10001", "-3", "true", '"7"', "[7]", "9" * 5000])
def test_an_epochs_line_out_of_range_or_unreadable_is_refused_naming_the_file(setup, value):
    root, _ = setup
    dataset(root)
    toml = root / "dataset.toml"
    lines = toml.read_text().splitlines()
    toml.write_text(
        "\n".join(f"# lora-workbench epochs = {value}" if "epochs =" in x else x for x in lines) + "\n"
    )
    with pytest.raises(ValidationError) as exc:
        dataset_toml.load_project_dataset(root)
    assert str(toml) in str(exc.value) and "from 1 to 10000" in str(exc.value)
