"""Image pairs (FLUX.1 Kontext, Qwen-Image-Edit): a subset's control/ folder holds the reference image
of each training image under its name. The scan reads it through the guard, never counts its images
as training images, and says which images have no reference and which references match nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_workbench.cli import main
from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.dataset.confined import Guard
from lora_workbench.dataset.scan import match_controls, scan_project
from lora_workbench.datatypes import DatasetSubset
from tests.unit.dataset.dataset_fakes import image, make_subset, opts


@pytest.fixture
def guard(roots) -> Guard:
    from lora_workbench import paths

    return Guard(paths.allowed_roots())


@pytest.fixture
def proj(roots) -> Path:
    """images/2_Cat with img0..img2 and control/img0.png, control/img1.jpg (img2 has none)."""
    root = roots / "proj"
    cat = make_subset(root, "2_Cat", 3)
    (cat / "control").mkdir()
    image(cat / "control" / "img0.png")
    image(cat / "control" / "img1.jpg", fmt="JPEG")
    return root


def codes(report) -> set[str]:
    return {i["code"] for i in report["issues"]}


def test_control_images_are_counted_apart_from_the_training_images(proj, guard):
    (s,) = scan_project(proj, guard=guard).subsets
    assert s.image_count == 3 and s.images == ["img0.png", "img1.png", "img2.png"]
    assert s.controls == ["img0.png", "img1.jpg"]
    assert s.control_dir == str(proj / "images" / "2_Cat" / "control")
    assert s.without_control == ["img2.png"] and s.unmatched_controls == []
    facts = s.to_dict()
    assert facts["controls"] == 2 and facts["without_control"] == ["img2.png"]


def test_a_subset_without_a_control_folder_has_no_control_facts(roots, guard):
    make_subset(roots / "plain", "1_Dog", 2)
    (s,) = scan_project(roots / "plain", guard=guard).subsets
    assert s.control_dir == "" and s.controls == [] and s.without_control == []


def test_control_images_match_by_stem_and_numbered_suffix_as_musubi_does():
    images = ["a.jpg", "a_b.png", "c.png"]
    controls = ["a.png", "a_b_0.png", "a_b_1.webp", "c.x.png", "zzz.png"]
    match = match_controls(images, controls)
    assert match.without == [] and match.unmatched == ["zzz.png"] and match.odd == ["c.x.png"]
    assert match_controls(["a.png"], []).without == ["a.png"]


def test_a_control_name_musubi_would_stop_on_is_a_warning(proj, guard):
    image(proj / "images" / "2_Cat" / "control" / "img2_ref.png")
    (s,) = scan_project(proj, guard=guard).subsets
    assert s.odd_controls == ["img2_ref.png"] and s.without_control == []
    r = prepare.preview(proj, opts(), guard=guard)
    (warning,) = [i for i in r["issues"] if i["code"] == "control-misnamed"]
    assert (
        "2_Cat/control/img2_ref.png" in warning["message"]
        and "musubi-tuner stops on it" in warning["message"]
    )


def test_images_without_a_control_image_are_a_warning_not_an_error(proj, guard):
    r = prepare.preview(proj, opts(), guard=guard)
    assert r["ok"] and "control-missing" in codes(r)
    (warning,) = [i for i in r["issues"] if i["code"] == "control-missing"]
    assert "1 training image(s) of 2_Cat have no control image" in warning["message"]
    assert "2_Cat/control/img2.png" in warning["message"]
    (row,) = r["subsets"]
    assert row["controls"] == 2 and row["without_control"] == 1 and row["images"] == 3


def test_a_control_image_without_a_training_image_is_a_warning(proj, guard):
    image(proj / "images" / "2_Cat" / "control" / "stray.png")
    r = prepare.preview(proj, opts(), guard=guard)
    (warning,) = [i for i in r["issues"] if i["code"] == "control-unmatched"]
    assert (
        warning["severity"] == "warning"
        and "2_Cat/control/stray.png matches no training image" in warning["message"]
    )


def test_the_applied_dataset_records_the_control_folder(proj, guard):
    dataset, _ = prepare.prepare_dataset(proj, opts(), guard=guard)
    (s,) = dataset.subsets
    assert (s.control_dir, s.control_count, s.control_missing) == (
        str(proj / "images" / "2_Cat" / "control"),
        2,
        1,
    )
    again = dataset_toml.dataset_from_toml(dataset.toml_path, proj)
    assert (
        again.subsets[0].control_dir,
        again.subsets[0].control_count,
        again.subsets[0].control_missing,
    ) == (
        s.control_dir,
        2,
        1,
    )


def test_an_old_dataset_record_without_control_fields_still_loads():
    old = {"name": "Cat", "image_dir": "/p/images/2_Cat", "images": 3, "repeats": 2}
    s = DatasetSubset.from_dict(old)
    assert (s.control_dir, s.control_count, s.control_missing) == ("", 0, 0)
    assert (
        DatasetSubset.from_dict(
            DatasetSubset("Cat", "/x", 1, 1, control_dir="/x/control").to_dict()
        ).control_dir
        == "/x/control"
    )


def test_a_changed_control_image_changes_the_fingerprint(proj, guard):
    dataset, _ = prepare.prepare_dataset(proj, opts(), guard=guard)
    control = proj / "images" / "2_Cat" / "control" / "img0.png"
    image(control, size=(32, 32))
    os.utime(control, ns=(1, 1))
    changed, _ = prepare.prepare_dataset(proj, opts(), guard=guard)
    assert changed.fingerprint != dataset.fingerprint


def test_dataset_scan_shows_the_control_images(proj, capsys):
    assert main(["dataset", "scan", str(proj)]) == 0
    out = capsys.readouterr().out
    assert "control images: 2 in" in out and "1 image(s) without one" in out


# --------------------------------------------------------------------------- attacks
def test_a_control_folder_linked_outside_is_refused_and_never_read(proj, guard, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-the-roots")
    image(outside / "img0.png")
    control = proj / "images" / "2_Cat" / "control"
    for p in control.iterdir():
        p.unlink()
    control.rmdir()
    control.symlink_to(outside, target_is_directory=True)
    (s,) = scan_project(proj, guard=guard).subsets
    assert s.control_dir == "" and s.controls == [] and "control" in s.refused
    r = prepare.preview(proj, opts(), guard=guard)
    (error,) = [i for i in r["issues"] if i["code"] == "link-outside"]
    assert not r["ok"] and "2_Cat/control is a link to" in error["message"]


def test_a_control_image_linked_outside_is_refused(proj, guard, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-the-roots")
    image(outside / "secret.png")
    (proj / "images" / "2_Cat" / "control" / "img2.png").symlink_to(outside / "secret.png")
    (s,) = scan_project(proj, guard=guard).subsets
    assert "control/img2.png" in s.refused and "img2.png" not in s.controls
    assert not prepare.preview(proj, opts(), guard=guard)["ok"]


def test_a_fifo_control_image_never_hangs_the_scan(proj, guard):
    os.mkfifo(proj / "images" / "2_Cat" / "control" / "img2.png")
    (s,) = scan_project(proj, guard=guard).subsets
    assert s.not_files == {"control/img2.png": "not a file"} and s.without_control == ["img2.png"]
    r = prepare.preview(proj, opts(), guard=guard)
    assert any(
        "control/img2.png is not a file" in i["message"] for i in r["issues"] if i["severity"] == "error"
    )
