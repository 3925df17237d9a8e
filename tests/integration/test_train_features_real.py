"""The training features on REAL kohya sd-scripts (CPU, the random SD1.5 checkpoint, 64x64 images):
LoCon + min-SNR + caption options + gradient accumulation seen in the LoRA's own metadata; a run
cancelled after its first saved state, resumed to the right total step count with its loss curve
continued; a run continued from a LoRA file starting from its weights; LyCORIS refused with the install
sentence when missing, and a real LoHa run with LyCORIS in an overlay folder (PYTHONPATH)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.safetensors_header import read_header
from lora_workbench.training import module_probe, resume, train
from lora_workbench.training.options import TrainOptions

pytestmark = pytest.mark.integration

BASE = dict(width=64, height=64, network_dim=4, network_alpha=4.0, device="cpu", seed=42)


@pytest.fixture
def project(tmp_path, monkeypatch, kohya_dir, kohya_python, tokenizer_cache, smoke_images) -> Path:
    src = smoke_images
    for var, value in (
        ("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json")),
        ("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache")),
        ("KOHYA_SS_PATH", str(kohya_dir)),
        ("KOHYA_PYTHON", str(kohya_python)),
        ("LORA_WORKBENCH_TOKENIZER_CACHE", str(tokenizer_cache)),
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
    ):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    proj = tmp_path / "featproj"
    sub = proj / "images" / "1_testsubject"
    shutil.copytree(src, sub)
    (proj / "dataset.toml").write_text(
        '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n'
        f"[[datasets]]\nresolution = [64, 64]\nbatch_size = 1\n\n  [[datasets.subsets]]\n"
        f'  image_dir = "{sub.as_posix()}"\n  class_tokens = "testsubject"\n  num_repeats = 1\n',
        encoding="utf-8",
    )
    return proj


def tensor_stats(kohya_python: Path, a: str, b: str) -> dict:
    """Per kind of tensor (lora_down, lora_up): the largest |a| and the largest |a - b|, read by torch
    in the sd-scripts environment (this test environment has no torch)."""
    code = (
        "import json, sys\nfrom safetensors.torch import load_file\n"
        "a, b = load_file(sys.argv[1]), load_file(sys.argv[2])\nout = {}\n"
        "for kind in ('lora_down', 'lora_up'):\n"
        "    keys = [k for k in a if kind in k]\n"
        "    out[kind] = {'max_a': max(a[k].float().abs().max().item() for k in keys),\n"
        "                 'max_diff': max((a[k].float() - b[k].float()).abs().max().item() for k in keys),\n"
        "                 'same_keys': sorted(a) == sorted(b)}\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(kohya_python), "-c", code, a, b], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_locon_min_snr_captions_and_gradient_accumulation_reach_the_lora(project, test_checkpoint):
    opts = TrainOptions.from_values(
        {
            **BASE,
            "epochs": 2,
            "network_type": "locon",
            "conv_dim": 2,
            "conv_alpha": 1.0,
            "min_snr_gamma": 5.0,
            "gradient_accumulation_steps": 2,
            "shuffle_caption": True,
            "keep_tokens": 1,
            "flip_aug": True,
            "color_aug": True,
            "caption_dropout_rate": 0.1,
            "optimizer_args": "weight_decay=0.02 betas=0.9,0.99",
        }
    )
    ds = dataset_toml.load_project_dataset(project)
    t0 = time.monotonic()
    run = train.train(opts, ds, test_checkpoint)
    meta = read_header(run.lora.path).metadata
    print(
        f"\nLoCon run: {time.monotonic() - t0:.1f}s, steps {[s for s, _ in run.losses]}, warnings {run.warnings}"
    )
    for key in ("ss_network_module", "ss_network_args", "ss_min_snr_gamma", "ss_gradient_accumulation_steps",
                "ss_optimizer", "ss_cache_latents", "ss_steps", "ss_max_train_steps"):  # fmt: skip
        print(f"  {key} = {meta.get(key)}")
    subset = json.loads(meta["ss_datasets"])[0]["subsets"][0]
    print(
        f"  ss_datasets subset: { {k: subset[k] for k in ('shuffle_caption', 'keep_tokens', 'flip_aug', 'color_aug')} }"
    )
    assert meta["ss_network_module"] == "networks.lora"
    # sd-scripts adds "dropout" (network_dropout, for LyCORIS) to the pairs it was given
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1.0", "dropout": None}
    assert float(meta["ss_min_snr_gamma"]) == 5.0 and meta["ss_gradient_accumulation_steps"] == "2"
    assert "weight_decay=0.02" in meta["ss_optimizer"] and meta["ss_cache_latents"] == "False"
    assert (
        subset["shuffle_caption"]
        and subset["keep_tokens"] == 1
        and subset["flip_aug"]
        and subset["color_aug"]
    )
    assert meta["ss_max_train_steps"] == "4" and [s for s, _ in run.losses] == [1, 2, 3, 4]  # ceil(4/2) x 2
    assert any(
        "_conv" in k or "resnets" in k for k in read_header(run.lora.path).keys()
    )  # LoCon: conv layers
    assert any("cache_latents is off" in w for w in run.warnings)
    events = list((project / "logs").glob(f"{Path(run.run_dir).name}_*/network_train/events.out.tfevents.*"))
    print(f"  TensorBoard: {[str(e.relative_to(project)) for e in events]}")
    assert events, "no TensorBoard events under PROJECT/logs"


def test_a_run_cancelled_after_its_first_state_resumes_to_the_right_step_count(project, test_checkpoint):
    opts = TrainOptions.from_values({**BASE, "epochs": 3, "save_state": True})
    ds = dataset_toml.load_project_dataset(project)
    run_dir = project / "output" / "featproj-001"
    seen: list = []
    trusted_while_running: list[bool] = []

    def past_the_first_state() -> bool:  # a step of epoch 2 ran: the epoch-1 state is complete
        past = bool(seen) and seen[-1].epoch >= 2 and seen[-1].step > 4
        if past and not trusted_while_running:  # what a workflow could resume if ComfyUI were killed now
            trusted_while_running.append(_trusted(resume.saved_states(run_dir, "featproj")))
        return past

    with pytest.raises(train.TrainingCancelled):
        train.train(
            opts,
            ds,
            test_checkpoint,
            on_update=lambda st: seen.append(st.copy()),
            should_cancel=past_the_first_state,
        )
    first = json.loads((run_dir / "run.json").read_text())
    print(
        f"\ncancelled at step {seen[-1].step}; states {first['states']}; losses {[s for s, _ in first['losses']]}"
    )
    assert first["state"] == "cancelled" and "featproj-000001-state" in first["states"]
    assert trusted_while_running == [True]  # recorded as saved, not only at the run's end

    updates: list = []
    t0 = time.monotonic()
    run = train.train(
        opts.replace(resume="latest"),
        ds,
        test_checkpoint,
        on_update=lambda st: updates.append((st.step, st.total)),
    )
    steps = [s for s, _ in run.losses]
    rec = json.loads((run_dir / "run.json").read_text())
    meta = read_header(run.lora.path).metadata
    print(
        f"resumed from {run.resumed_from} in {time.monotonic() - t0:.1f}s: steps {steps}, last update {updates[-1]}"
    )
    print(f"  sd-scripts' own ss_steps (its count restarts at 0 on resume) = {meta.get('ss_steps')}")
    assert Path(run.run_dir) == run_dir and run.resumed_from == "featproj-000001-state"
    assert steps == list(range(1, 13)) and updates[-1] == (12, 12)
    assert rec["state"] == "finished" and rec["status"]["step"] == 12 and rec["status"]["total"] == 12
    assert "load train state from" in (run_dir / "train.log").read_text()
    fresh = train.prepare(opts, ds, test_checkpoint)
    assert train.find_cached(ds, fresh.fingerprint) is None  # never taken for a fresh run


def _trusted(states: list) -> bool:
    try:
        for state in states:
            resume.check_known(state)
    except ValidationError:
        return False
    return bool(states)


def test_a_run_continued_from_a_lora_file_starts_from_its_weights(project, kohya_python, test_checkpoint):
    ds = dataset_toml.load_project_dataset(project)
    first = train.train(
        TrainOptions.from_values({**BASE, "epochs": 1, "save_precision": "float"}), ds, test_checkpoint
    )
    tiny = {"learning_rate": 1e-8, "unet_lr": 1e-8, "text_encoder_lr": 1e-8, "save_precision": "float"}
    cont = train.train(
        TrainOptions.from_values({**BASE, **tiny, "epochs": 1, "network_weights": first.lora.path}),
        ds,
        test_checkpoint,
    )
    fresh = train.train(
        TrainOptions.from_values({**BASE, **tiny, "epochs": 1, "seed": 7}), ds, test_checkpoint
    )
    near = tensor_stats(kohya_python, first.lora.path, cont.lora.path)
    far = tensor_stats(kohya_python, first.lora.path, fresh.lora.path)
    log = Path(cont.lora.log_path).read_text()
    print(f"\ncontinued vs the file it started from: {near}\nfresh vs that file: {far}")
    assert f"load network weights from {first.lora.path}" in log
    assert near["lora_down"]["same_keys"] and near["lora_up"]["max_a"] > 0
    assert near["lora_down"]["max_diff"] < 1e-3 * near["lora_down"]["max_a"]
    assert near["lora_up"]["max_diff"] < 0.05 * near["lora_up"]["max_a"]
    assert far["lora_down"]["max_diff"] > 0.1 * far["lora_down"]["max_a"]  # a fresh start is elsewhere


@pytest.fixture(scope="session")
def lycoris_overlay(kohya_python, tmp_path_factory) -> Path:
    """LyCORIS in a folder of its own (the sd-scripts venv stays as it is): $LORA_WORKBENCH_TEST_LYCORIS,
    or `pip install --no-deps --target` with the sd-scripts pip (skips when the index is unreachable)."""
    given = os.environ.get("LORA_WORKBENCH_TEST_LYCORIS")
    if given and (Path(given) / "lycoris" / "kohya.py").is_file():
        return Path(given)
    target = tmp_path_factory.mktemp("lycoris-overlay")
    proc = subprocess.run(
        [
            str(kohya_python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            f"lycoris-lora=={module_probe.LYCORIS_VERSION}",  # 4.1.3 fails on SD U-Nets (duplicated lora name)
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(f"could not install lycoris-lora into an overlay folder: {proc.stderr.strip()[-300:]}")
    return target


def test_lycoris_is_refused_with_the_install_sentence_then_loha_trains_with_it(
    project, lycoris_overlay, test_checkpoint
):
    ds = dataset_toml.load_project_dataset(project)
    opts = TrainOptions.from_values(
        {**BASE, "epochs": 1, "max_train_steps": 2, "network_type": "lycoris_loha"}
    )
    t0 = time.monotonic()
    with pytest.raises(ValidationError) as err:
        train.train(opts, ds, test_checkpoint, env=dict(os.environ))
    print(f"\nwithout LyCORIS ({time.monotonic() - t0:.1f}s, before launch): {err.value}")
    assert "pip install lycoris-lora" in str(err.value) and not (project / "output").exists()

    env = {**os.environ, "PYTHONPATH": str(lycoris_overlay)}
    run = train.train(opts, ds, test_checkpoint, env=env)
    header = read_header(run.lora.path)
    meta = header.metadata
    print(f"LoHa run: {len(header.keys())} tensors, ss_network_module={meta.get('ss_network_module')}, "
          f"ss_network_args={meta.get('ss_network_args')}, steps {[s for s, _ in run.losses]}")  # fmt: skip
    assert (
        meta["ss_network_module"] == "lycoris.kohya" and json.loads(meta["ss_network_args"])["algo"] == "loha"
    )
    assert any(k.endswith(".hada_w1_a") for k in header.keys())
