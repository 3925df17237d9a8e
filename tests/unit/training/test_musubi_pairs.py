"""Image pairs on musubi-tuner: FLUX.1 Kontext and Qwen-Image-Edit read each subset's control/ folder
as its control_directory; a subset without reference images is a sentence naming the folder to make."""

from __future__ import annotations

import pytest

from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import ValidationError
from tests.unit import train_fakes
from tests.unit.training.musubi_fakes import add_controls, build, make_project, paired, target


@pytest.fixture
def project(tmp_path, monkeypatch):
    return make_project(tmp_path, monkeypatch)


def _tables(job) -> list[dict]:
    return tomllib.loads(job.files["dataset.toml"])["datasets"]


def test_kontext_reads_the_subsets_control_folder(project):
    t = paired(project, "flux_kontext")
    (table,) = _tables(build(t))
    assert table["control_directory"] == str(project / "images" / "2_subject" / "control")
    assert table["image_directory"] == str(project / "images" / "2_subject")


@pytest.mark.parametrize("version", ["edit", "edit-2509", "edit-2511"])
def test_qwen_image_edit_reads_the_control_folder(project, version):
    (table,) = _tables(build(paired(project, "qwen_image", version)))
    assert table["control_directory"].endswith("/2_subject/control")


def test_several_numbered_control_images_per_image_are_pairs_too(project):
    add_controls(project, [f"img{i}_{n}" for i in range(3) for n in (0, 1)])
    t = target(project, "qwen_image", "edit-2509")
    assert t.dataset.subsets[0].control_count == 6 and t.dataset.subsets[0].control_missing == 0
    assert _tables(build(t))[0]["control_directory"].endswith("/control")


def test_a_single_image_model_leaves_the_control_folder_out(project):
    for family, variant in (("qwen_image", "original"), ("z_image", "")):
        (table,) = _tables(build(paired(project, family, variant)))
        assert "control_directory" not in table


def test_a_subset_without_control_images_names_the_folder_to_make(project):
    folder = project / "images" / "2_subject" / "control"
    with pytest.raises(
        ValidationError, match="FLUX.1 Kontext learns from image pairs and subset 'subject'"
    ) as e:
        build(target(project, "flux_kontext"))
    assert f"make the folder {folder} with the reference image" in str(e.value)
    folder.mkdir()  # an empty control folder is no better
    with pytest.raises(ValidationError, match=f"make the folder {folder}"):
        build(target(project, "qwen_image", "edit"))


def test_training_images_without_a_control_image_are_a_sentence(project):
    add_controls(project, ["img0"])
    with pytest.raises(
        ValidationError, match="2 training image\\(s\\) of subset 'subject' have no control image"
    ):
        build(target(project, "flux_kontext"))


def test_the_control_directory_of_an_odd_folder_name_reads_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    project = train_fakes.make_project(tmp_path, images=2, repeats=2)
    odd = project / "images" / "2_sub ject'\"]\\x"
    (project / "images" / "2_subject").rename(odd)
    text = (project / "dataset.toml").read_text(encoding="utf-8")
    (project / "dataset.toml").write_text(
        text.replace("2_subject", "2_sub ject'\\\"]\\\\x"), encoding="utf-8"
    )
    add_controls(project)
    (table,) = _tables(build(target(project, "flux_kontext")))
    assert table["control_directory"] == str(odd / "control")
