"""The Caption Dataset (WD14) node and `lora-workbench dataset caption`: the same run, the node with
ComfyUI's progress bar and Cancel, the model folder from ComfyUI's models or the setting."""

from __future__ import annotations

import pytest

from lora_workbench.captioning.wd14 import OPTIONS
from lora_workbench.cli import main
from lora_workbench.errors import PathNotAllowed
from tests.unit.captioning import tagger_fakes


@pytest.fixture
def env(tmp_path, monkeypatch):
    env = tagger_fakes.setup(tmp_path, monkeypatch)
    monkeypatch.setenv("LORA_WORKBENCH_WD14_DIR", str(env.model_dir))
    return env


def node_values(**changes) -> dict:
    return {**{o.name: o.default for o in OPTIONS}, **changes}


def test_the_node_has_a_widget_per_tagger_option_and_no_model_path_input(pack):
    cls = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]
    required = cls.INPUT_TYPES()["required"]
    assert list(required) == ["project_folder", *(o.name for o in OPTIONS)]
    assert required["allow_download"] == ("BOOLEAN", {"default": False, "tooltip": OPTIONS[-1].tooltip})
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["CaptionDatasetWD14"] == "Caption Dataset (WD14)"


def test_the_node_captions_the_project_and_hands_on_its_folder(pack, comfy, env):
    comfy.start_server()
    node = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]()
    out = node.caption(str(env.project), unique_id="7", **node_values(trigger_word="ohwx"))
    folder, summary = out["result"]
    assert folder == str(env.project) and "3 caption(s) written" in summary
    assert (env.subset / "img0.txt").read_text() == "ohwx, 1girl, solo, long hair\n"
    assert comfy.progress[-1] == (3, 3) and comfy.progress_texts[-1][1] == "7"


def test_the_node_reads_the_model_from_comfyuis_models_without_a_setting(pack, comfy, env, monkeypatch):
    monkeypatch.delenv("LORA_WORKBENCH_WD14_DIR")
    tagger_fakes.make_model(comfy.base / "models" / "wd14_tagger")
    node = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]()
    assert "3 caption(s)" in node.caption(str(env.project), **node_values())["result"][1]


def test_cancel_in_comfyui_interrupts_the_prompt_and_changes_no_caption(pack, comfy, env, monkeypatch):
    monkeypatch.setenv("FAKE_WD14_SLEEP", "2")
    comfy.interrupt_flag = True
    node = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]()
    with pytest.raises(Exception) as err:
        node.caption(str(env.project), **node_values())
    assert type(err.value).__name__ == "InterruptProcessingException"
    assert not list(env.subset.glob("*.txt"))


def test_a_project_outside_the_roots_is_refused_by_the_node(pack, comfy, env):
    node = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]()
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        node.caption(str(env.outside), **node_values())


def test_the_node_reruns_when_images_change_but_not_for_its_own_captions(pack, comfy, env):
    cls = pack.NODE_CLASS_MAPPINGS["CaptionDatasetWD14"]
    before = cls.IS_CHANGED(project_folder=str(env.project))
    cls().caption(str(env.project), **node_values())
    assert cls.IS_CHANGED(project_folder=str(env.project)) == before
    (env.subset / "img0.png").rename(env.subset / "img9.png")
    assert cls.IS_CHANGED(project_folder=str(env.project)) != before


def test_the_cli_captions_with_kebab_case_flags(env, capsys):
    code = main(
        [
            "dataset", "caption", str(env.project), "--tagger", "wd14", "--model-dir", str(env.model_dir),
            "--trigger-word", "ohwx", "--undesired-tags", "solo", "--no-remove-underscore",
        ]
    )  # fmt: skip
    assert code == 0 and "3 caption(s) written" in capsys.readouterr().out
    assert (env.subset / "img1.txt").read_text() == "ohwx, 1girl, long_hair\n"


def test_the_cli_says_which_folder_lacks_the_model(env, tmp_path, capsys):
    assert main(["dataset", "caption", str(env.project), "--model-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "error: The WD14 tagger" in err and str(tmp_path / "none") in err and "Traceback" not in err
