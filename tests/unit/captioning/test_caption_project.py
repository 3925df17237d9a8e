"""Captioning a project with the tagger script (a fake with the real script's options and output): the
captions, the trigger word, append/keep, progress, Cancel, failures and missing pieces as sentences."""

from __future__ import annotations

import json
import os

import psutil
import pytest

from lora_workbench.captioning import process, tag
from lora_workbench.captioning.tag import Hooks, TaggingCancelled, caption_project
from lora_workbench.dataset.confined import Guard
from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.paths import allowed_roots
from tests.unit.captioning import tagger_fakes


@pytest.fixture
def env(tmp_path, monkeypatch):
    return tagger_fakes.setup(tmp_path, monkeypatch)


def run(env, hooks=None, **values):
    return caption_project(env.spec(**values), Guard(allowed_roots()), hooks)


def captions(env) -> dict[str, str]:
    return {p.name: p.read_text("utf-8") for p in sorted(env.subset.glob("*.txt"))}


def test_every_image_gets_a_caption_with_the_trigger_word_first_once(env, monkeypatch):
    monkeypatch.setenv("FAKE_WD14_TAGS", "solo,ohwx,long_hair")
    report = run(env, trigger_word="ohwx")
    assert captions(env) == {f"img{i}.txt": "ohwx, solo, long hair\n" for i in range(3)}
    assert report.images == 3 and len(report.written) == 3 and not report.skipped


def test_a_trigger_word_the_tagger_does_not_see_is_still_put_first(env):
    run(env, trigger_word="ohwx cat, style")
    assert set(captions(env).values()) == {"ohwx cat, style, 1girl, solo, long hair\n"}


def test_undesired_tags_are_left_out(env):
    run(env, undesired_tags="solo", remove_underscore=False)
    assert set(captions(env).values()) == {"1girl, long_hair\n"}


def test_overwrite_replaces_an_existing_caption(env):
    (env.subset / "img0.txt").write_text("old caption\n")
    run(env)
    assert captions(env)["img0.txt"] == "1girl, solo, long hair\n"


def test_append_keeps_the_existing_tags_and_adds_the_new_ones_once(env):
    (env.subset / "img0.txt").write_text("ohwx, solo, red scarf\n")
    run(env, existing_captions="append", trigger_word="ohwx")
    assert captions(env)["img0.txt"] == "ohwx, solo, red scarf, 1girl, long hair\n"


def test_keep_tags_only_the_images_without_a_caption(env):
    (env.subset / "img1.txt").write_text("my own words\n")
    report = run(env, existing_captions="keep")
    assert captions(env)["img1.txt"] == "my own words\n" and captions(env)["img0.txt"].startswith("1girl")
    assert report.kept == 1 and report.images == 2


def test_a_second_run_rewrites_nothing(env):
    run(env)
    before = {p.name: p.stat().st_mtime_ns for p in env.subset.glob("*.txt")}
    report = run(env)
    assert len(report.unchanged) == 3 and not report.written
    assert {p.name: p.stat().st_mtime_ns for p in env.subset.glob("*.txt")} == before


def test_the_script_runs_off_line_on_a_staged_copy_in_the_trainers_environment(env, tmp_path, monkeypatch):
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_WD14_RECORD", str(record))
    run(env)
    seen = json.loads(record.read_text())
    assert seen["env"]["HF_HUB_OFFLINE"] == "1" and seen["env"]["PYTHONPATH"].startswith(str(env.scripts))
    assert seen["cwd"] == str(env.scripts)
    assert seen["argv"][0].endswith("finetune/tag_images_by_wd14_tagger.py")
    staged = seen["argv"][1]
    assert not staged.startswith(str(env.project)) and not os.path.exists(staged)  # removed after the run


def test_regularization_subsets_are_captioned_only_when_asked(env):
    reg = env.project / "regularization" / "1_person"
    reg.mkdir(parents=True)
    (env.subset / "img0.png").rename(reg / "r.png")
    run(env)
    assert not (reg / "r.txt").exists()
    run(env, regularization=True)
    assert (reg / "r.txt").read_text() == "1girl, solo, long hair\n"


def test_a_project_without_images_runs_nothing_and_says_so(env, monkeypatch):
    for p in env.subset.glob("*.png"):
        p.unlink()
    monkeypatch.setenv("FAKE_WD14_FAIL", "1")  # would fail if it ran
    assert "tagged 0 image(s)" in run(env).summary()


def test_an_unreadable_image_is_left_out_and_named(env):
    (env.subset / "broken.png").write_bytes(b"not a png")
    report = run(env)
    assert "images/2_cat/broken.png" in report.skipped and len(report.written) == 3


def test_progress_comes_from_the_scripts_bar(env):
    seen = []
    run(env, Hooks(on_progress=lambda p: seen.append((p.done, p.total))), batch_size=2)
    assert seen[-1] == (2, 2)  # 3 images in batches of 2


def test_a_bar_split_across_chunks_is_read_once_whole():
    parser = process.BarParser()
    parser.feed("found 4 images.\n\r 25%|##     | 1/")
    assert (parser.progress.done, parser.progress.total) == (0, 0)
    assert parser.progress.text() == "starting the tagger: found 4 images."
    assert parser.feed("4 [00:01<00:03,  1.00it/s]\r 50%|####   | 2/4 [00:02<00:02,  1.00it/s]")
    assert (parser.progress.done, parser.progress.total) == (2, 4)
    assert list(parser.lines) == ["found 4 images."]
    assert parser.progress.text() == "tagging: batch 2/4"


def test_cancel_stops_the_tagger_and_its_children_and_changes_no_caption(env, tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_WD14_CHILD_PIDFILE", str(pidfile))
    monkeypatch.setenv("FAKE_WD14_SLEEP", "2")
    (env.subset / "img0.txt").write_text("old\n")
    seen = []
    hooks = Hooks(on_progress=seen.append, should_cancel=lambda: bool(seen), grace_seconds=1.0)
    with pytest.raises(TaggingCancelled, match="no caption was changed"):
        run(env, hooks)
    assert captions(env) == {"img0.txt": "old\n"}
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_an_exception_from_the_progress_callback_stops_the_tagger(env, monkeypatch):
    class InterruptProcessingException(Exception):
        pass

    def interrupt(_progress):
        raise InterruptProcessingException()

    monkeypatch.setenv("FAKE_WD14_SLEEP", "2")
    with pytest.raises(InterruptProcessingException):
        run(env, Hooks(on_progress=interrupt))
    assert captions(env) == {}


def test_a_failing_tagger_is_a_sentence_with_its_last_lines_and_changes_nothing(env, monkeypatch):
    monkeypatch.setenv("FAKE_WD14_FAIL", "1")
    with pytest.raises(WorkbenchError) as err:
        run(env)
    assert "no caption was changed" in str(err.value) and "failed on purpose" in str(err.value)
    assert captions(env) == {}


def test_missing_onnxruntime_names_the_pip_command_for_the_sd_scripts_python(env):
    (env.scripts / "onnxruntime.py").unlink()
    with pytest.raises(ValidationError) as err:
        run(env)
    python = os.environ["KOHYA_PYTHON"]
    assert f"{python} -m pip install onnx onnxruntime" in str(err.value)
    assert "cannot import onnxruntime" in str(err.value)


def test_a_missing_model_stops_before_anything_runs(env, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_WD14_RECORD", str(record))
    with pytest.raises(ValidationError, match="download model.onnx and selected_tags.csv"):
        run(env, repo_id="SmilingWolf/wd-vit-tagger-v3")
    assert not record.exists()


def test_with_download_allowed_the_script_is_left_to_fetch_the_model(env, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_WD14_RECORD", str(record))
    (env.model_dir / "SmilingWolf_wd-vit-tagger-v3").mkdir()  # the fake "downloads" nothing
    run(env, repo_id="SmilingWolf/wd-vit-tagger-v3", allow_download=True)
    seen = json.loads(record.read_text())
    assert seen["env"]["HF_HUB_OFFLINE"] is None and "--force_download" in seen["argv"]


def test_no_sd_scripts_tagger_script_is_a_sentence(env):
    (env.scripts / "finetune" / "tag_images_by_wd14_tagger.py").unlink()
    with pytest.raises(ValidationError, match="has no finetune/tag_images_by_wd14_tagger.py"):
        run(env)


def test_the_staging_folders_are_gone_after_a_run_and_after_a_failure(env, monkeypatch):
    base = tag.paths.cache_dir() / tag.STAGING_FOLDER
    run(env)
    monkeypatch.setenv("FAKE_WD14_FAIL", "1")
    with pytest.raises(WorkbenchError):
        run(env)
    assert list(base.iterdir()) == []
