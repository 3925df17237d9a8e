"""KohyaLoRATrain in a stubbed ComfyUI with a fake sd-scripts: progress, live text, outputs, cache, Cancel."""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import ValidationError
from lora_workbench.training.proctree import pid_alive
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree


@pytest.fixture
def node_env(pack, comfy, roots, tmp_path, monkeypatch):
    fakes.make_kohya(tmp_path, monkeypatch)
    for var in ("FAKE_SD_FAIL", "FAKE_SD_NO_FILE", "FAKE_SD_SLEEP", "FAKE_SD_CHILD_PIDFILE"):
        monkeypatch.delenv(var, raising=False)
    launches = tmp_path / "launches.txt"
    monkeypatch.setenv("FAKE_SD_LAUNCHES", str(launches))
    fake_torch = types.ModuleType("torch")
    fake_torch.from_numpy = lambda a: a  # the IMAGE tensor's layout is what we check
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    fakes.write_checkpoint(comfy.base / "models" / "checkpoints" / "sd15.safetensors", fakes.sd1_tensors())
    project = fakes.make_project(tmp_path / "projects")
    comfy.start_server()
    node = pack.nodes.kohya_lora_train.KohyaLoRATrain()
    ds = dataset_toml.dataset_from_toml(project / "dataset.toml", project)
    return node, ds, launches


def run_node(node, ds, **kw):
    args = dict(
        epochs=2, width=64, height=64, network_dim=4, network_alpha=4.0, device="cpu", launcher="python"
    )
    args.update(kw)
    return node.train(ds, "sd15.safetensors", unique_id="7", **args)


def test_every_input_has_a_tooltip_and_the_seed_defaults(pack, comfy):
    cls = pack.nodes.kohya_lora_train.KohyaLoRATrain
    types_ = cls.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (_t, opts) in types_[group].items():
            assert opts.get("tooltip"), name
    req = types_["required"]
    assert req["epochs"][1]["default"] == 0 and req["seed"][1]["default"] == 12345  # 0: the dataset's
    assert (req["width"][1]["default"], req["height"][1]["default"]) == (0, 0)
    assert req["network_dim"][1]["default"] == 32 and req["network_alpha"][1]["default"] == 16.0
    assert req["sample_sampler"][1]["default"] == "dpm_2"
    assert types_["hidden"]["unique_id"] == "UNIQUE_ID" and cls.OUTPUT_NODE
    assert pack.NODE_CLASS_MAPPINGS["KohyaLoRATrain"] is cls


def test_node_trains_and_reports_progress_text_and_outputs(node_env, comfy):
    node, ds, launches = node_env
    out = run_node(node, ds, show_samples=True)
    lora, image, lora_path, log_path, _samples = out["result"]
    assert Path(lora_path).is_file() and lora.path == lora_path and Path(log_path).name == "train.log"
    assert image.shape[0] == 1 and image.shape[3] == 3 and 0.0 <= image.min() and image.max() <= 1.0
    assert comfy.progress and comfy.progress[-1] == (8, 8)
    assert any("step" in t and node_id == "7" for t, node_id in comfy.progress_texts), comfy.progress_texts
    images = out["ui"]["images"]
    assert images[0]["type"] == "temp" and images[0]["subfolder"] == "lora_workbench"
    assert len(images) == 3  # loss curve + one sample per epoch
    for img in images:
        assert (comfy.base / "temp" / img["subfolder"] / img["filename"]).is_file()
    assert any(ev == "lora_workbench.train" for ev, _ in comfy.sent)  # forwarded to the browser


def test_the_progress_bar_previews_the_newest_sample_like_a_sampler(node_env, comfy):
    node, ds, launches = node_env
    out = run_node(node, ds, show_samples=True)
    assert comfy.previews, "no progress update carried a preview image"
    fmt, image, max_size = comfy.previews[-1]
    assert fmt == "PNG" and max_size == 512 and image.mode == "RGB"
    samples = sorted(Path(out["result"][0].output_dir).glob("sample/*.png"))
    from PIL import Image

    with Image.open(samples[-1]) as newest:
        assert image.size == newest.size and image.tobytes() == newest.convert("RGB").tobytes()
    assert len(comfy.previews) <= len(samples) + 5  # a handful of images, not one per step


def test_the_samples_output_is_the_last_epoch_s_images_as_one_batch(node_env, comfy, pack):
    node, ds, launches = node_env
    out = run_node(node, ds, show_samples=True)
    samples = out["result"][4]
    run = Path(out["result"][0].output_dir)
    last = sorted(run.glob("sample/*_e000002_*.png"))
    assert last and samples.shape[0] == len(last) and samples.shape[3] == 3
    from PIL import Image

    with Image.open(last[0]) as img:
        assert samples.shape[1:3] == (img.height, img.width)
    cls = pack.NODE_CLASS_MAPPINGS["KohyaLoRATrain"]
    assert cls.RETURN_NAMES[-1] == "samples" and cls.RETURN_TYPES[:4] == (
        "TRAINED_LORA",
        "IMAGE",
        "STRING",
        "STRING",
    )


def test_without_samples_the_samples_output_is_one_blank_image(node_env):
    node, ds, launches = node_env
    samples = run_node(node, ds)["result"][4]
    assert samples.shape == (1, 64, 64, 3) and samples.max() == 0.0


def test_requeue_with_the_same_inputs_returns_instantly_from_the_earlier_run(node_env, comfy):
    node, ds, launches = node_env
    first = run_node(node, ds)
    t0 = time.monotonic()
    again = run_node(node, ds)
    assert time.monotonic() - t0 < 5
    assert again["result"][2] == first["result"][2]
    assert len(launches.read_text().splitlines()) == 1
    assert "reused" in comfy.progress_texts[-1][0]


def test_a_reused_run_s_images_swapped_for_links_after_it_was_found_show_nothing_outside(
    node_env, comfy, monkeypatch, tmp_path_factory
):
    # A shared project's run folder: its loss curve and samples become links to the user's files
    # between the moment the cache checked them and the moment the node shows them.
    from lora_workbench.training import train

    node, ds, launches = node_env
    run_node(node, ds, show_samples=True)
    secret = tmp_path_factory.mktemp("outside") / "id_rsa.png"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY----- the user's own")
    found = train.find_cached

    def swap_after_the_check(*args):
        run = found(*args)
        for f in [run.loss_curve, *run.samples]:
            os.replace(f, f + ".old")
            os.symlink(secret, f)
        return run

    monkeypatch.setattr(train, "find_cached", swap_after_the_check)
    out = run_node(node, ds, show_samples=True)
    assert "reused" in out["ui"]["text"][0]
    shown = [f for f in (comfy.base / "temp").rglob("*") if f.is_file()]
    assert all(b"PRIVATE KEY" not in f.read_bytes() for f in shown)
    assert out["ui"]["images"] == [] and out["result"][4].shape == (1, 64, 64, 3)


def test_cancel_raises_comfys_interrupt_and_kills_the_trainer_tree(node_env, comfy, tmp_path, monkeypatch):
    node, ds, _ = node_env
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_SD_CHILD_PIDFILE", str(pidfile))
    monkeypatch.setenv("FAKE_SD_SLEEP", "0.5")

    def press_cancel():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(v >= 1 for v, _ in comfy.progress):
                comfy.interrupt_flag = True
                return
            time.sleep(0.05)

    t = threading.Thread(target=press_cancel)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(Exception) as exc:
        run_node(node, ds, epochs=30)
    t.join()
    assert type(exc.value).__name__ == "InterruptProcessingException"
    assert time.monotonic() - t0 < 20
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_unknown_checkpoint_is_a_sentence(node_env):
    node, ds, _ = node_env
    with pytest.raises(ValidationError, match="not in ComfyUI's checkpoints"):
        node.train(ds, "missing.safetensors", unique_id="1", device="cpu")


def test_tokenizer_folder_from_a_workflow_is_confined(node_env):
    node, ds, _ = node_env
    with pytest.raises(Exception, match="outside the allowed roots"):
        run_node(node, ds, tokenizer_cache_dir="/")


def test_settings_come_through_a_chain_of_option_nodes(node_env, comfy, pack):
    node, ds, launches = node_env
    launch = pack.NODE_CLASS_MAPPINGS["KohyaLaunchOptions"]()
    optimizer = pack.NODE_CLASS_MAPPINGS["KohyaOptimizerOptions"]()
    (chain,) = launch.collect(unique_id="5", device="cpu", launcher="python")
    (chain,) = optimizer.collect(options=chain, unique_id="6", max_train_steps=3)
    out = node.train(
        ds, "sd15.safetensors", unique_id="7", options=chain, epochs=2, width=64, height=64, network_dim=4,
        network_alpha=4.0,
    )  # fmt: skip
    lora, _image, lora_path, _log, _samples = out["result"]
    run = Path(lora_path).parent
    record = __import__("json").loads((run / "run.json").read_text())
    assert record["spec"]["max_train_steps"] == 3 and record["spec"]["launcher"] == "python"
    assert comfy.progress[-1] == (3, 3)


def test_a_setting_from_an_option_node_and_an_old_input_is_an_error_naming_both(node_env, pack):
    node, ds, _ = node_env
    (chain,) = pack.NODE_CLASS_MAPPINGS["KohyaLaunchOptions"]().collect(unique_id="5", device="cpu")
    with pytest.raises(ValidationError, match=r"device is given twice: by Kohya Launch Options \(node 5\)"):
        run_node(node, ds, options=chain)  # run_node also sends the old input device=cpu


# --------------------------------------------------------------------------- attacks: the trained-LoRA links
def _tree(folder: Path) -> dict[str, str]:
    """Every entry under folder (links not followed): relative path -> link text, 'dir' or 'file'."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = str(p.readlink()) if p.is_symlink() else ("dir" if p.is_dir() else "file")
    return out


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outside")
    (out / "keep.txt").write_text("the user's")
    (out / "private.safetensors").write_bytes(b"not the project's")
    return out


def _a1111_linking_out(roots: Path, outside: Path, monkeypatch) -> Path:
    """An A1111 folder inside the roots whose models/Lora is a link to a folder outside them."""
    a1111 = roots / "a1111"
    (a1111 / "models").mkdir(parents=True)
    (a1111 / "models" / "Lora").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("A1111_PATH", str(a1111))
    monkeypatch.setenv("FORGE_PATH", str(roots / "no-forge"))
    return a1111


def test_a_ui_lora_folder_linking_outside_the_roots_gets_no_trained_lora_link(
    node_env, comfy, roots, outside, monkeypatch
):
    node, ds, _ = node_env
    _a1111_linking_out(roots, outside, monkeypatch)
    (comfy.base / "models" / "loras").mkdir(parents=True, exist_ok=True)
    before = _tree(outside)
    out = run_node(node, ds, link_to_library=True)
    assert _tree(outside) == before  # nothing written through the link
    text = "\n".join(out["ui"]["text"])
    assert "outside the UI folder and the allowed roots; not linked" in text
    linked = list((comfy.base / "models" / "loras").rglob("*.safetensors"))
    assert linked and all(p.is_symlink() for p in linked)  # ComfyUI's own folder still gets its link
    # the cached re-run links the same way
    again = run_node(node, ds, link_to_library=True)
    assert again["result"][2] == out["result"][2] and _tree(outside) == before


def test_an_output_folder_linking_out_of_the_project_is_not_linked_from_a_workflow(
    node_env, comfy, roots, outside, monkeypatch
):
    node, ds, _ = node_env
    monkeypatch.setenv("A1111_PATH", str(roots / "no-a1111"))
    monkeypatch.setenv("FORGE_PATH", str(roots / "no-forge"))
    (Path(ds.project_dir) / "output-evil").symlink_to(outside, target_is_directory=True)
    loras = comfy.base / "models" / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    out = run_node(node, ds, link_to_library=True)
    assert not (loras / "private-evil.safetensors").exists()
    assert "resolves outside the allowed roots; not linked" in "\n".join(out["ui"]["text"])
    assert any(p.is_symlink() for p in loras.rglob("*.safetensors"))  # the run's own LoRA is linked


def test_the_cli_run_follows_a_ui_lora_folder_link_as_before(node_env, roots, outside, monkeypatch):
    from lora_workbench.training import train
    from lora_workbench.training.options import TrainOptions

    _node, ds, _ = node_env
    a1111 = _a1111_linking_out(roots, outside, monkeypatch)
    opts = TrainOptions.from_values(
        dict(epochs=1, width=64, height=64, network_dim=4, network_alpha=4.0, launcher="python"),
    ).replace(link_to_library=True)
    ckpt = roots / "ComfyUI" / "models" / "checkpoints" / "sd15.safetensors"
    train.train(opts, ds, ckpt, device="cpu", ui_dirs={"a1111": a1111})  # no roots: the CLI
    assert list(outside.rglob("p1.safetensors"))


CACHE_STEP = """
import sys
for i in range(5):
    sys.stderr.write(f"\\r{25 * i:3d}%|##        | {i}/4 [00:00<00:00,  9.00it/s]")
sys.stderr.write("\\n")
"""


def test_the_node_names_each_phase_and_its_bar_follows_the_running_step(
    node_env, comfy, monkeypatch, tmp_path
):
    """A trainer whose job caches before it trains (musubi-tuner's shape), run by the node: the text names
    the phase with its count, the bar follows the cache count, then the training steps."""
    from dataclasses import replace

    from lora_workbench.training.backends.sd_scripts import build
    from lora_workbench.training.job import Step

    node, ds, _ = node_env
    one_step = build.build_job

    def with_a_cache_step(opts, target, warnings=None):
        job = one_step(opts, target, warnings)
        cache = Step(
            "cache_latents", "Caching latents", (sys.executable, "-c", CACHE_STEP), str(tmp_path), "count"
        )
        return replace(job, steps=(cache, *job.steps))

    monkeypatch.setattr(build, "build_job", with_a_cache_step)
    run_node(node, ds)
    texts = [t for t, node_id in comfy.progress_texts if node_id == "7"]
    assert any(t.startswith("Caching latents · 4/4 · 9.00 it/s") for t in texts), texts
    assert (4, 4) in comfy.progress and comfy.progress[-1] == (8, 8)
    first_training = next(i for i, t in enumerate(texts) if "step " in t)
    assert all("Caching" not in t for t in texts[first_training:])
