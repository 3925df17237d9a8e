"""DatasetSubsetWeights through the pack (ComfyUI stubbed) and the dataset CLI: same dataset, same summary."""

import json
import math
import os

import pytest
from PIL import Image

try:  # Python 3.11+
    import tomllib
except ImportError:  # 3.10
    import tomli as tomllib

from lora_workbench import events
from lora_workbench.cli import main
from lora_workbench.dataset import prepare
from lora_workbench.datatypes import LoraDataset
from lora_workbench.errors import PathNotAllowed, ValidationError


def make_subset(root, dirname, n, size=(64, 64), captions=True):
    folder = root / "images" / dirname
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size).save(folder / f"{i}.png")
        if captions:
            (folder / f"{i}.txt").write_text(f"{dirname}, solo")
    return folder


@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    comfy.modules["server"].PromptServer.instance = None


@pytest.fixture
def proj(roots):
    root = roots / "proj"
    make_subset(root, "3_Cat", 7)
    make_subset(root, "1_Dog", 3)
    return root


def test_node_is_registered_with_tooltips_on_every_input(pack):
    cls = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["DatasetSubsetWeights"] == "Dataset Subset Weights"
    spec = cls.INPUT_TYPES()
    for name, (_type, opts) in spec["required"].items():
        assert opts.get("tooltip"), name
    assert spec["required"]["width"][1]["default"] == 512 and spec["required"]["width"][1]["step"] == 64
    assert spec["required"]["apply_mode"][0] == ["toml (non-destructive)", "rename folders"]
    assert cls.RETURN_TYPES == ("LORA_DATASET", "STRING")
    assert cls.CATEGORY.startswith("LoRA Workbench")


def test_node_writes_the_toml_and_outputs_the_dataset(node, comfy, proj):
    out = node.prepare(
        project_folder=str(proj),
        weights="Cat: 2",
        width=64,
        height=64,
        enable_bucket=False,
        apply_mode="toml (non-destructive)",
        batch_size=1,
        epochs=3,
        max_items_per_epoch=0,
        unique_id="5",
    )
    ds, text = out["result"]
    assert isinstance(ds, LoraDataset) and os.path.isfile(ds.toml_path)
    assert out["ui"]["text"] == [text]
    assert comfy.progress_texts == [(text, "5")]
    assert events.latest(events.DATASET)["summary"] == text
    assert ds.items_per_epoch == 63 and ds.steps_per_epoch == 63
    assert sorted(os.listdir(proj / "images")) == ["1_Dog", "3_Cat"]


def test_node_rename_mode_renames(node, proj):
    node.prepare(
        project_folder=str(proj),
        weights="",
        width=64,
        height=64,
        enable_bucket=False,
        apply_mode="rename folders",
        batch_size=1,
        epochs=1,
        max_items_per_epoch=0,
        repeats="equal",
    )
    assert sorted(os.listdir(proj / "images")) == ["3_Cat", "7_Dog"]


def test_node_validation_errors_stop_the_graph(node, proj):
    make_subset(proj, "1_Bird", 1, captions=False)
    with pytest.raises(ValidationError, match="1_Bird/0.png has no caption"):
        node.prepare(
            project_folder=str(proj),
            weights="",
            width=64,
            height=64,
            enable_bucket=False,
            apply_mode="rename folders",
            batch_size=1,
            epochs=1,
            max_items_per_epoch=0,
        )
    assert sorted(os.listdir(proj / "images")) == ["1_Bird", "1_Dog", "3_Cat"]


def test_node_initialises_a_new_project_then_asks_for_subsets(node, roots):
    new = roots / "fresh"
    with pytest.raises(ValidationError, match="has no subset folders"):
        node.prepare(
            project_folder=str(new),
            weights="",
            width=512,
            height=512,
            enable_bucket=False,
            apply_mode="toml (non-destructive)",
            batch_size=1,
            epochs=3,
            max_items_per_epoch=0,
        )
    assert (new / "images").is_dir() and (new / "images-unorganized").is_dir() and (new / "output").is_dir()


def test_node_does_not_scaffold_into_an_unrelated_folder(node, roots):
    other = roots / "holiday photos"
    other.mkdir()
    (other / "beach.jpg").write_bytes(b"x")  # read as a plain folder of images: no layout added
    with pytest.raises(ValidationError, match="holiday photos/beach.jpg cannot be read as an image"):
        node.prepare(
            project_folder=str(other),
            weights="",
            width=512,
            height=512,
            enable_bucket=False,
            apply_mode="toml (non-destructive)",
            batch_size=1,
            epochs=3,
            max_items_per_epoch=0,
        )
    assert os.listdir(other) == ["beach.jpg"]


def test_node_refuses_a_project_outside_the_roots(node, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    with pytest.raises(PathNotAllowed):
        node.prepare(
            project_folder=str(outside),
            weights="",
            width=64,
            height=64,
            enable_bucket=False,
            apply_mode="toml (non-destructive)",
            batch_size=1,
            epochs=1,
            max_items_per_epoch=0,
        )


def test_is_changed_follows_the_folder_listing(node, proj):
    cls = type(node)
    a = cls.IS_CHANGED(project_folder=str(proj), weights="")
    assert a == cls.IS_CHANGED(project_folder=str(proj), weights="")
    (proj / "images/3_Cat/0.txt").write_text("new caption, longer")
    assert cls.IS_CHANGED(project_folder=str(proj), weights="") != a
    assert math.isnan(cls.IS_CHANGED(project_folder="/definitely/not/allowed", weights=""))


def test_cli_and_node_print_the_same_summary(node, proj, capsys):
    out = node.prepare(
        project_folder=str(proj),
        weights="Dog: 3",
        width=64,
        height=64,
        enable_bucket=False,
        apply_mode="toml (non-destructive)",
        batch_size=2,
        epochs=3,
        max_items_per_epoch=0,
    )
    capsys.readouterr()
    assert (
        main(
            [
                "dataset",
                "apply",
                str(proj),
                "--set",
                "Dog=3",
                "--width",
                "64",
                "--height",
                "64",
                "--batch-size",
                "2",
                "--epochs",
                "3",
                "--no-enable-bucket",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == out["result"][1]


def test_cli_train_init_scan_and_keywords(tmp_path, capsys):
    root = tmp_path / "p"
    assert main(["train-init", str(root)]) == 0
    assert "6 folders created" in capsys.readouterr().out
    make_subset(root, "2_Cat", 2)
    assert main(["dataset", "scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2_Cat: 2 images, 2 captions, repeats 2; sizes 64x64 x2" in out
    assert "Keywords (2 distinct): 2_Cat (2), solo (2)" in out
    assert main(["dataset", "scan", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subsets"][0]["images"] == 2 and ["solo", 2] in data["keywords"]
    assert main(["dataset", "keywords", str(root)]) == 0
    assert capsys.readouterr().out.splitlines() == ["     2  2_Cat", "     2  solo"]


def test_cli_weights_previews_without_writing(proj, capsys, tmp_path):
    wfile = tmp_path / "w.txt"
    wfile.write_text("Cat: 1\nDog: 1\n")
    assert (
        main(
            [
                "dataset",
                "weights",
                str(proj),
                "--weights",
                str(wfile),
                "--width",
                "64",
                "--height",
                "64",
                "--set",
                "Cat=2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Weights:\nDog: 1\nCat: 2\n" in out and "66.7%" in out and "repeats weights" in out
    assert not (proj / "dataset.toml").exists()
    strict = ["--no-enable-bucket", "--wrong-size", "error"]
    assert main(["dataset", "weights", str(proj), "--width", "512", "--height", "512", *strict]) == 1
    assert "not the training resolution 512x512" in capsys.readouterr().out


def test_cli_buckets_by_default_and_never_upscales(proj, capsys):
    assert main(["dataset", "weights", str(proj), "--width", "512", "--height", "512"]) == 0
    out = capsys.readouterr().out
    assert "buckets on" in out and "train at their own size, never upscaled" in out


def test_cli_apply_modes_dry_run_and_budget(proj, capsys):
    assert (
        main(
            [
                "dataset",
                "apply",
                str(proj),
                "--mode",
                "rename",
                "--dry-run",
                "--width",
                "64",
                "--height",
                "64",
            ]
        )
        == 0
    )
    assert "Folder names already match the repeats; nothing renamed." in capsys.readouterr().out
    args = ["dataset", "apply", str(proj), "--width", "64", "--height", "64"]
    assert main([*args, "--mode", "rename", "--dry-run", "--repeats", "equal"]) == 0
    assert "Would rename 1 folder(s): 1_Dog -> 7_Dog" in capsys.readouterr().out
    assert sorted(os.listdir(proj / "images")) == ["1_Dog", "3_Cat"]
    assert main([*args, "--repeats", "equal", "--budget", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dataset"]["items_per_epoch"] <= 20
    toml = tomllib.loads((proj / "dataset.toml").read_text())
    assert [s["num_repeats"] for s in toml["datasets"][0]["subsets"]] == [
        s["repeats"] for s in data["dataset"]["subsets"]
    ]


def test_cli_errors_exit_1_with_the_message(proj, capsys):
    assert main(["dataset", "apply", str(proj), "--weights", "Cat two"]) == 1
    assert "Line 1 of the weights" in capsys.readouterr().err
    assert main(["dataset", "recover", str(proj)]) == 0
    assert "No interrupted rename" in capsys.readouterr().out


def test_preview_matches_what_the_web_route_needs(proj):
    r = prepare.preview(str(proj), prepare.DatasetOptions("Cat: 2", (64, 64)))
    for key in ("subsets", "issues", "steps", "keywords", "summary", "weights_text"):
        assert key in r
    row = r["subsets"][0]
    for key in ("name", "folder", "images", "captions_missing", "weight", "repeats", "share", "target_share"):
        assert key in row


def test_cancel_in_comfyui_stops_the_resized_copies(node, comfy, roots, monkeypatch):
    from lora_workbench.dataset import resize_cache

    root = roots / "big"
    make_subset(root, "1_Big", 5, size=(128, 64))
    resized_png = resize_cache._resized_png
    made = []

    def resize_then_cancel(*args):
        made.append(1)
        comfy.interrupt_flag = True  # Cancel pressed while the first image was resized
        return resized_png(*args)

    monkeypatch.setattr(resize_cache, "_resized_png", resize_then_cancel)
    with pytest.raises(Exception) as exc:
        node.prepare(
            project_folder=str(root),
            width=64,
            height=64,
            enable_bucket=False,
            wrong_size="resize",
            unique_id="5",
        )
    assert type(exc.value).__name__ == "InterruptProcessingException"
    assert len(made) == 1 and not (root / "dataset.toml").exists()


def test_a_full_disk_is_one_sentence_and_the_old_dataset_toml_stays(node, proj, monkeypatch):
    from lora_workbench.errors import DiskFull
    from tests.unit.full_disk import fill_disk_for, temp_files

    kw = dict(project_folder=str(proj), width=64, height=64, unique_id="5")
    node.prepare(**kw)
    before = (proj / "dataset.toml").read_text()
    fill_disk_for(monkeypatch, "dataset.toml")
    with pytest.raises(
        DiskFull, match=r"The disk is full: .*dataset\.toml could not be written .* free there"
    ):
        node.prepare(**kw, weights="Cat: 5")
    assert (proj / "dataset.toml").read_text() == before and temp_files(proj) == []
