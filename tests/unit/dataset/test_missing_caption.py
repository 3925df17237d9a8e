"""missing_caption: a training image without a caption file stops the run (error, as before), trains on
the folder's class tokens (what sd-scripts does when the subset has class_tokens), or trains an empty
caption (sd-scripts' fallback when the subset has none) - on the node, the CLI and in dataset.toml."""

from __future__ import annotations

import pytest

from lora_workbench.cli import main
from lora_workbench.client import workflow as wf
from lora_workbench.dataset import prepare
from lora_workbench.errors import ValidationError
from tests.unit.dataset.dataset_fakes import make_subset, opts
from tests.unit.dataset.test_workflow_migration import object_info, old_ui_workflow

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def uncaptioned(roots):
    root = roots / "proj"
    make_subset(root, "2_cat", 3)
    (root / "images" / "2_cat" / "img1.txt").unlink()
    return root


def subsets_in_toml(root):
    return tomllib.loads((root / "dataset.toml").read_text(encoding="utf-8"))["datasets"][0]["subsets"]


def test_a_missing_caption_stops_the_run_by_default_and_names_the_way_out(uncaptioned):
    with pytest.raises(ValidationError, match="img1.png has no caption.*set missing_caption"):
        prepare.prepare_dataset(uncaptioned, opts())


def test_class_tokens_trains_the_uncaptioned_image_on_the_folder_subject(uncaptioned):
    ds, text = prepare.prepare_dataset(uncaptioned, opts(missing_caption="class_tokens"))
    (sub,) = subsets_in_toml(uncaptioned)
    assert sub["class_tokens"] == "cat" and ds.subsets[0].images == 3
    assert "they train on the class tokens 'cat' (missing_caption = class_tokens)" in "\n".join(ds.warnings)


def test_empty_leaves_class_tokens_out_so_sd_scripts_trains_an_empty_caption(uncaptioned):
    ds, _ = prepare.prepare_dataset(uncaptioned, opts(missing_caption="empty"))
    (sub,) = subsets_in_toml(uncaptioned)
    assert "class_tokens" not in sub
    assert "an empty caption (missing_caption = empty)" in "\n".join(ds.warnings)


def test_empty_keeps_the_class_tokens_of_regularization_subsets(uncaptioned):
    make_subset(uncaptioned, "1_animal", 2, reg=True, captions=False)
    prepare.prepare_dataset(uncaptioned, opts(missing_caption="empty"))
    reg = [s for s in subsets_in_toml(uncaptioned) if s["is_reg"]]
    assert reg[0]["class_tokens"] == "animal"


def test_an_unknown_missing_caption_mode_is_a_sentence(uncaptioned):
    with pytest.raises(ValidationError, match="missing_caption must be one of error, class_tokens, empty"):
        prepare.prepare_dataset(uncaptioned, opts(missing_caption="guess"))


def test_the_cli_flag_takes_the_same_modes(uncaptioned, capsys):
    assert main(["dataset", "apply", str(uncaptioned), "--width", "64", "--height", "64"]) == 1
    assert "set missing_caption" in capsys.readouterr().err
    args = ["dataset", "apply", str(uncaptioned), "--width", "64", "--height", "64"]
    assert main([*args, "--missing-caption", "empty"]) == 0
    assert "class_tokens" not in subsets_in_toml(uncaptioned)[0]


def test_the_node_widget_comes_last_with_error_first(pack):
    spec = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"].INPUT_TYPES()
    assert list(spec["optional"])[-1] == "missing_caption"
    assert spec["optional"]["missing_caption"][0] == ["error", "class_tokens", "empty"]


def test_a_workflow_saved_before_the_widget_still_stops_on_a_missing_caption(pack, comfy, uncaptioned):
    node = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    data = old_ui_workflow(str(uncaptioned), "")
    data["nodes"][0]["widgets_values"] += ["folders", 0, "error", ".txt"]
    (entry,) = wf.ui_to_api(data, object_info(type(node))).values()
    assert "missing_caption" not in entry["inputs"]
    with pytest.raises(ValidationError, match="has no caption"):
        node.prepare(**entry["inputs"])
    data["nodes"][0]["widgets_values"] += [1, "class_tokens"]  # folder_repeats, then missing_caption
    (entry,) = wf.ui_to_api(data, object_info(type(node))).values()
    assert entry["inputs"]["missing_caption"] == "class_tokens"
    ds, _ = node.prepare(**entry["inputs"])["result"]
    assert ds.subsets[0].images == 3
