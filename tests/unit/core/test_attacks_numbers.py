"""Attack: a number literal a float cannot hold never becomes another number silently. Python's float()
reads "1e-400" as 0.0 (a block threshold of 0 trains every block, a subset weight of 0 drops the
subset) and "1e400" as inf; wherever the pack reads numbers from text (network_args, optimizer_args,
kohya_ss GUI configs, CLI flags, `--set`, subset weights, JSON files) such a literal is a sentence
naming the key and the value. Zero written any way stays 0."""

from __future__ import annotations

import json

import pytest

from lora_workbench import numbers
from lora_workbench.cli import main
from lora_workbench.client import workflow as wf
from lora_workbench.client.queue_client import load_workflow
from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.dataset.weights import parse_weights
from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.training import kvargs
from lora_workbench.training.backends.sd_scripts import kohya_gui
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import validate
from tests.unit import train_fakes as fakes

UNDERFLOW = ["1e-400", "-1e-400", "0.1e-323", "1E-999", "1_0e-400"]
OVERFLOW = ["1e400", "-1e400", "inf", "nan", "Infinity"]
ZEROS = ["0", "0.0", "-0.0", "0e5", "0.000e-400", "0_0.0"]


@pytest.mark.parametrize("text", UNDERFLOW + OVERFLOW)
def test_parse_float_refuses_a_literal_a_float_cannot_hold(text):
    with pytest.raises(numbers.OutOfRange, match=repr(text).replace("+", r"\+")):
        numbers.parse_float(text)


@pytest.mark.parametrize("text", ZEROS)
def test_zero_written_any_way_is_zero(text):
    assert numbers.parse_float(text) == 0


def test_a_tiny_number_that_keeps_its_value_is_kept():
    assert numbers.parse_float("1e-320") == 1e-320 != 0


@pytest.mark.parametrize("text", UNDERFLOW)
def test_network_args_refuse_a_threshold_that_would_become_zero(text):
    with pytest.raises(ValidationError, match=f"network_args: block_lr_zero_threshold is '{text}'.*0.0"):
        validate(TrainOptions(network_args=f"block_lr_zero_threshold={text}"))


def test_optimizer_args_refuse_a_weight_decay_that_would_become_zero():
    with pytest.raises(ValidationError, match="optimizer_args: weight_decay is '1e-400'"):
        kvargs.optimizer_args("weight_decay=1e-400", "AdamW")


@pytest.mark.parametrize("zero", ["0", "0.0", "0e5"])
def test_network_args_take_zero_written_any_way(zero):
    assert kvargs.network_args(f"block_lr_zero_threshold={zero}") == ["block_lr_zero_threshold=0.0"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("learning_rate", "1e-400"), ("noise_offset", "1e-400"), ("unet_lr", "1e400"), ("min_snr_gamma", "nan")],
)
def test_a_gui_config_number_a_float_cannot_hold_is_refused_with_the_reason(key, value):
    result = kohya_gui.import_config({key: value})
    assert key not in result.values
    assert repr(value) in dict(result.refused)[key]


@pytest.mark.parametrize("value", ["1e400", "1e999,512"])
def test_a_gui_resolution_beyond_a_float_is_a_reason_not_a_traceback(value):
    result = kohya_gui.import_config({"max_resolution": value})
    assert "max_resolution" in dict(result.refused)


def test_a_gui_config_file_with_a_json_number_that_would_become_zero_refuses_that_key(tmp_path):
    cfg = tmp_path / "preset.json"
    cfg.write_text('{"learning_rate": 1e-400, "epoch": 2}', encoding="utf-8")
    result = kohya_gui.import_file(cfg)
    assert "learning_rate" not in result.values and result.values["epochs"] == 2
    assert "'1e-400' is nearer 0 than a float holds" in dict(result.refused)["learning_rate"]


@pytest.mark.parametrize("value", ["1e-400", "1e400"])
def test_the_cli_refuses_a_float_flag_a_float_cannot_hold(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["train", str(project), "--noise-offset", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--noise-offset" in err and repr(value) in err and "Traceback" not in err
    assert not (project / "output").exists()


@pytest.mark.parametrize("kind", ["FLOAT", None])
def test_a_set_override_that_would_become_zero_is_refused(kind):
    with pytest.raises(ValidationError, match="--set value '1e-400'"):
        wf.coerce("1e-400", kind)


def test_a_workflow_file_with_a_number_that_would_become_zero_is_refused(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"1": {"class_type": "X", "inputs": {}}})[:-1] + ', "2": 1e-400}')
    with pytest.raises(WorkbenchError, match="'1e-400'"):
        load_workflow(str(path))


@pytest.mark.parametrize("text", ["A: 1e-400", '{"A": 1e-400}', "A: 1e400", '{"A": "1e-400"}'])
def test_a_subset_weight_a_float_cannot_hold_never_drops_the_subset(text):
    with pytest.raises(ValidationError, match="Line 1 of the weights"):
        parse_weights(text)


def test_subset_weights_of_zero_and_json_fractions_still_read():
    assert parse_weights('{"A": 0.0, "B": 2.5, "C": 1e-320}') == {"A": 0.0, "B": 2.5, "C": 1e-320}


def test_a_dataset_config_with_a_number_that_would_become_zero_is_refused(tmp_path):
    (tmp_path / "img").mkdir()
    toml = tmp_path / "dataset.toml"
    toml.write_text(
        "[general]\ncaption_dropout_rate = 1e-400\n[[datasets]]\nresolution = 512\n"
        f'[[datasets.subsets]]\nimage_dir = "{tmp_path / "img"}"\nnum_repeats = 1\n',
        encoding="utf-8",
    )
    with pytest.raises(WorkbenchError, match=r"dataset config .*dataset.toml.*'1e-400'"):
        dataset_from_toml(toml, tmp_path)


def test_a_gui_config_integer_beyond_any_float_is_a_reason_not_an_overflow():
    result = kohya_gui.import_config({"learning_rate": 10**400, "unet_lr": -(10**400)})
    reasons = dict(result.refused)
    assert reasons["learning_rate"].startswith("learning_rate is 100000000000... (401 digits); set it")
    assert "unet_lr" in reasons and not result.values


def test_an_integer_beyond_any_float_in_the_options_is_refused_by_name():
    with pytest.raises(ValidationError, match=r"noise_offset is 100000000000\.\.\. \(401 digits\)"):
        validate(TrainOptions(noise_offset=10**400))


def test_queue_refuses_a_timeout_that_would_become_zero(tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text('{"1": {"class_type": "X", "inputs": {}}}', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["queue", str(path), "--timeout", "1e-400", "--server", "http://127.0.0.1:9"])
    assert exc.value.code == 2 and "'1e-400'" in capsys.readouterr().err
