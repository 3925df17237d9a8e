"""The runner on REAL kohya sd-scripts (accelerate launch, CPU, random SD1.5, 64x64, 8 steps).

Needs KOHYA_SS_PATH (and the test checkpoint, offline tokenizer and small dataset; see conftest.py). Set
LORA_WORKBENCH_SAVE_CAPTURE=DIR to keep the raw log of the finished run there (fixture material).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from lora_workbench.modelfiles.safetensors_header import read_header
from lora_workbench.training import runner
from lora_workbench.training.progress import ProgressParser

from .conftest import integration_home, trainers_alive

pytestmark = pytest.mark.integration

STEPS = 8


def scripts_dir(kohya_dir: Path) -> Path:
    return kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"


@pytest.fixture
def smoke_dataset(tmp_path, smoke_images) -> Path:
    """A copy of the small 4-image dataset (2 repeats: 8 items per epoch) and its TOML."""
    dest = tmp_path / "dataset"
    shutil.copytree(smoke_images, dest / "images" / "2_testsubject")
    toml = dest / "dataset.toml"
    toml.write_text(
        '[general]\ncaption_extension = ".txt"\nshuffle_caption = false\nkeep_tokens = 1\n'
        "enable_bucket = false\n\n[[datasets]]\nresolution = [64, 64]\nbatch_size = 1\n\n"
        f'  [[datasets.subsets]]\n  image_dir = "{(dest / "images" / "2_testsubject").as_posix()}"\n'
        '  class_tokens = "testsubject"\n  num_repeats = 2\n',
        encoding="utf-8",
    )
    return toml


def train_argv(python: Path, ckpt: Path, tokenizer: Path, dataset_toml: Path, out: Path) -> list[str]:
    return [
        str(python),
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "2",
        "train_network.py",
        "--pretrained_model_name_or_path",
        str(ckpt),
        "--output_dir",
        str(out),
        "--output_name",
        "testlora",
        "--network_module",
        "networks.lora",
        "--network_dim",
        "4",
        "--network_alpha",
        "4",
        "--save_model_as",
        "safetensors",
        "--mixed_precision",
        "no",
        "--learning_rate",
        "1e-4",
        "--optimizer_type",
        "AdamW",
        "--tokenizer_cache_dir",
        str(tokenizer),
        "--seed",
        "42",
        "--dataset_config",
        str(dataset_toml),
        "--max_train_steps",
        str(STEPS),
    ]


def offline_env() -> dict:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return env


def test_real_sd_scripts_run_reports_every_step_and_writes_a_kohya_lora(
    tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, smoke_dataset
):
    out = tmp_path / "output"
    log = tmp_path / "logs" / "train.log"
    updates: list[str] = []
    t0 = time.monotonic()
    res = runner.run_process(
        train_argv(kohya_python, test_checkpoint, tokenizer_cache, smoke_dataset, out),
        runner.RunOptions(
            cwd=str(scripts_dir(kohya_dir)),
            env=offline_env(),
            log_path=str(log),
            total_steps=STEPS,
            on_update=lambda st: updates.append(st.text()),
        ),
    )
    wall = time.monotonic() - t0
    st = res.status
    print(f"\nreal run: rc={res.returncode} state={st.state} {st.text()} wall={wall:.1f}s")
    print("losses:", st.losses)
    print("saved:", st.saved)
    print("first/last updates:", updates[:2], updates[-2:])
    assert res.returncode == 0 and st.state == "finished", res.tail
    assert (st.step, st.total) == (STEPS, STEPS) and (st.epoch, st.epochs) == (1, 1)
    assert [s for s, _ in st.losses] == list(range(1, STEPS + 1))
    assert all(0 < v < 10 for _, v in st.losses)
    final = out / "testlora.safetensors"
    assert st.saved == [str(final)] and final.is_file()
    header = read_header(final)
    keys = header.keys()
    assert any(k.startswith("lora_unet_") for k in keys) and any(k.startswith("lora_te_") for k in keys)
    print(f"LoRA: {len(keys)} tensors, e.g. {sorted(keys)[0]}")
    assert any(u.startswith("starting") for u in updates) and any("step 8/8" in u for u in updates)
    raw = log.read_bytes()
    assert b"\rsteps:" in raw and b"saving checkpoint:" in raw

    # The merged raw log parses to the same steps (what a user's log file is).
    p = ProgressParser()
    evs = p.feed(raw.decode("utf-8", "replace")) + p.flush()
    assert max(e.step for e in evs if e.kind == "step") == STEPS

    capture_dir = os.environ.get("LORA_WORKBENCH_SAVE_CAPTURE")
    if capture_dir:
        text = raw.decode("utf-8", "replace")
        for real, alias in (
            (str(tmp_path), "$TMP"),
            (str(integration_home()), "$HARNESS_HOME"),  # the fixtures' placeholder
            (str(Path.home()), "$HOME"),
        ):
            text = text.replace(real, alias)
        Path(capture_dir, "runner_accelerate_default.log").write_text(text, encoding="utf-8")


class InterruptProcessingException(Exception):
    """Stands in for ComfyUI's exception of the same name (raised from a ProgressBar update)."""


@pytest.mark.parametrize("how", ["should_cancel", "interrupt_in_on_update"])
def test_real_cancel_mid_run_leaves_no_trainer_behind(
    how, tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, smoke_dataset
):
    out = tmp_path / "cancel-output"
    asked: list[float] = []

    def should_cancel() -> bool:
        st = runner.current_status()
        if st and st["step"] >= 2:
            asked.append(time.monotonic())
            return True
        return False

    def on_update(st: runner.TrainStatus) -> None:
        if st.step >= 2:
            asked.append(time.monotonic())
            raise InterruptProcessingException()

    kwargs = {"should_cancel": should_cancel} if how == "should_cancel" else {"on_update": on_update}
    argv = train_argv(kohya_python, test_checkpoint, tokenizer_cache, smoke_dataset, out)
    call = lambda: runner.run_process(  # noqa: E731
        argv,
        runner.RunOptions(
            cwd=str(scripts_dir(kohya_dir)),
            env=offline_env(),
            log_path=str(tmp_path / "cancel.log"),
            total_steps=STEPS,
            **kwargs,
        ),
    )
    if how == "should_cancel":
        res = call()
        st = res.status
        assert res.cancelled
    else:
        with pytest.raises(InterruptProcessingException):
            call()
        st = runner.TrainStatus(
            **{
                k: v
                for k, v in runner.current_status().items()
                if k in runner.TrainStatus.__dataclass_fields__
            }
        )
    t_cancel_done = time.monotonic()
    print(
        f"\ncancel ({how}): state={st.state} {st.text()}; "
        f"run_process returned {t_cancel_done - asked[0]:.2f} s after the cancel request"
    )
    assert st.state == "cancelled"
    assert 2 <= st.step < STEPS
    deadline = t_cancel_done + 10
    left = trainers_alive(str(out))
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = trainers_alive(str(out))
    print(f"trainer processes left after cancel: {left}")
    assert left == []
    assert not (out / "testlora.safetensors").exists()
