"""The WD14 tagger's command: sd-scripts' own script with --onnx, every option one argument, every value
checked first; the model folder and the off-line rule."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from lora_workbench.captioning import wd14
from lora_workbench.captioning.wd14 import TaggerSpec
from lora_workbench.errors import ValidationError

FAKE = Path(__file__).with_name("fake_wd14.py")


@pytest.fixture(scope="module")
def script_parser():
    """The fake's parser: the real script's option names and types (48d368fa)."""
    spec = importlib.util.spec_from_file_location("fake_wd14", FAKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.setup_parser()


def spec(tmp_path, **values) -> TaggerSpec:
    return TaggerSpec.from_values(str(tmp_path / "proj"), str(tmp_path / "models"), values).checked()


def test_the_command_is_sd_scripts_tagger_with_onnx_and_each_option_one_argument(tmp_path):
    s = spec(
        tmp_path,
        general_threshold=0.4,
        character_threshold=0.9,
        trigger_word="ohwx cat",
        undesired_tags="solo, text",
        existing_captions="append",
        caption_extension=".caption",
        batch_size=4,
        use_rating_tags=True,
    )
    argv = wd14.build_argv(s, "/py/python", "/sd/finetune/tag_images_by_wd14_tagger.py", tmp_path / "stage")
    assert argv == [
        "/py/python",
        "/sd/finetune/tag_images_by_wd14_tagger.py",
        str(tmp_path / "stage"),
        "--onnx",
        "--recursive",
        "--repo_id=SmilingWolf/wd-v1-4-convnext-tagger-v2",
        f"--model_dir={tmp_path / 'models'}",
        "--batch_size=4",
        "--general_threshold=0.4",
        "--character_threshold=0.9",
        "--caption_extension=.caption",
        "--undesired_tags=solo, text",
        "--always_first_tags=ohwx cat",
        "--append_tags",
        "--remove_underscore",
        "--use_rating_tags",
    ]


def test_the_defaults_overwrite_and_leave_out_empty_tag_lists(tmp_path):
    argv = wd14.build_argv(spec(tmp_path), "py", "script.py", tmp_path)
    assert "--append_tags" not in argv and "--force_download" not in argv
    assert not [a for a in argv if a.startswith(("--undesired_tags", "--always_first_tags"))]


@pytest.mark.parametrize("value", ["--output_path=/etc/passwd", "-h", "--force_download", "a=b, --debug"])
def test_a_tag_list_that_looks_like_an_option_stays_one_value(tmp_path, script_parser, value):
    s = spec(tmp_path, undesired_tags=value, trigger_word=value)
    args = script_parser.parse_args(wd14.build_argv(s, "py", "script.py", tmp_path)[2:])
    assert args.undesired_tags == value and args.always_first_tags == value
    assert args.output_path is None and not args.force_download


def test_the_command_parses_with_the_scripts_own_option_names(tmp_path, script_parser):
    args = script_parser.parse_args(wd14.build_argv(spec(tmp_path), "py", "s.py", tmp_path / "x")[2:])
    assert (
        args.onnx and args.recursive and args.general_threshold == 0.35 and args.caption_extension == ".txt"
    )


@pytest.mark.parametrize("value", ["cat\nsolo", "cat\rsolo", "a\x00b", "tab\there", "x\u2028y"])
def test_a_line_break_or_control_character_in_a_tag_list_is_a_sentence(tmp_path, value):
    with pytest.raises(ValidationError, match="trigger_word holds a line break"):
        spec(tmp_path, trigger_word=value)


def test_a_tag_list_too_long_is_a_sentence(tmp_path):
    with pytest.raises(ValidationError, match="undesired_tags is 2001 characters long"):
        spec(tmp_path, undesired_tags="x" * 2001)


@pytest.mark.parametrize(
    "repo", ["../../etc", "a/../..", "owner/name/sub", "owner", "-rf/x", "owner/..", "/abs/x", "o/n\nx", ""]
)
def test_a_repo_id_that_is_not_owner_slash_name_is_refused(tmp_path, repo):
    with pytest.raises(ValidationError, match="repo_id"):
        spec(tmp_path, repo_id=repo)


def test_another_hub_repo_of_the_same_layout_is_taken(tmp_path):
    assert spec(tmp_path, repo_id="someone/my-tagger_v1.5").model_folder.name == "someone_my-tagger_v1.5"


@pytest.mark.parametrize("ext", [".png", ".JPG", ".webp", ".avif"])
def test_an_image_extension_as_caption_extension_is_refused(tmp_path, ext):
    with pytest.raises(ValidationError, match="is an image extension"):
        spec(tmp_path, caption_extension=ext)


@pytest.mark.parametrize("ext", ["txt", ".", "./x", ".a/b", "--x", ".t xt"])
def test_a_caption_extension_that_is_no_extension_is_refused(tmp_path, ext):
    with pytest.raises(ValidationError, match="must look like .txt"):
        spec(tmp_path, caption_extension=ext)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("general_threshold", 1.5),
        ("general_threshold", -0.1),
        ("character_threshold", math.nan),
        ("general_threshold", "0.3"),
        ("general_threshold", True),
        ("batch_size", 0),
        ("batch_size", 65),
        ("batch_size", 2.5),
    ],
)
def test_a_number_out_of_range_or_of_the_wrong_type_is_a_sentence(tmp_path, name, value):
    with pytest.raises(ValidationError, match=f"{name} is .*give a number from"):
        spec(tmp_path, **{name: value})


@pytest.mark.parametrize(("name", "value"), [("existing_captions", "merge"), ("allow_download", "yes")])
def test_a_choice_not_offered_is_a_sentence(tmp_path, name, value):
    with pytest.raises(ValidationError, match=name):
        spec(tmp_path, **{name: value})


def test_the_hub_is_off_line_unless_downloads_are_allowed(tmp_path):
    off = wd14.child_environment(spec(tmp_path), "/sd", base={"PYTHONPATH": "/mine"})
    on = wd14.child_environment(spec(tmp_path, allow_download=True), "/sd", base={})
    assert off["HF_HUB_OFFLINE"] == "1" and off["PYTHONPATH"].split(":") == ["/sd", "/mine"]
    assert "HF_HUB_OFFLINE" not in on and on["PYTHONPATH"] == "/sd"


def test_a_missing_model_names_the_folder_and_the_files_when_download_is_off(tmp_path):
    with pytest.raises(ValidationError) as err:
        wd14.check_model(spec(tmp_path))
    folder = tmp_path / "models" / "SmilingWolf_wd-v1-4-convnext-tagger-v2"
    assert str(folder) in str(err.value) and "model.onnx and selected_tags.csv" in str(err.value)
    assert "https://huggingface.co/SmilingWolf/wd-v1-4-convnext-tagger-v2" in str(err.value)
    assert "allow_download" in str(err.value)


def test_a_missing_model_is_downloaded_only_when_allowed(tmp_path):
    assert wd14.check_model(spec(tmp_path, allow_download=True)) is True


def test_a_half_downloaded_model_folder_is_downloaded_again_with_force_download(tmp_path):
    s = spec(tmp_path, allow_download=True)
    s.model_folder.mkdir(parents=True)
    (s.model_folder / "selected_tags.csv").write_text("tag_id,name,category,count\n")
    # The script downloads only when the folder is missing, unless --force_download.
    assert "--force_download" in wd14.build_argv(s, "py", "s.py", tmp_path)
    (s.model_folder / "model.onnx").write_bytes(b"x")
    assert "--force_download" not in wd14.build_argv(s, "py", "s.py", tmp_path)


def test_the_model_folder_is_the_setting_then_comfyuis_models(tmp_path, monkeypatch):
    monkeypatch.delenv("LORA_WORKBENCH_WD14_DIR", raising=False)
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path / "ComfyUI"))
    assert wd14.default_model_dir() == tmp_path / "ComfyUI" / "models" / "wd14_tagger"
    assert wd14.default_model_dir(tmp_path / "m") == tmp_path / "m" / "wd14_tagger"
    monkeypatch.setenv("LORA_WORKBENCH_WD14_DIR", str(tmp_path / "taggers"))
    assert wd14.default_model_dir(tmp_path / "m") == tmp_path / "taggers"
