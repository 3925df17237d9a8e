"""Attack: a link outside the roots named like an image a trainer may read is refused, whatever the
pack's image rules say of its extension. musubi-tuner globs .avif always (sd-scripts only with its
Pillow plugin): a shared project's `leak.avif -> /outside/secret.avif` was "skipped" by the scan as a
plugin image and then read by musubi."""

from __future__ import annotations

import pytest
from PIL import Image

from lora_workbench.dataset import prepare
from lora_workbench.dataset.confined import Guard
from lora_workbench.dataset.scan import scan_project


@pytest.fixture
def guard(roots) -> Guard:
    from lora_workbench import paths

    return Guard(paths.allowed_roots())


@pytest.mark.parametrize("name", ["leak.avif", "leak.AVIF", "leak.jxl"])
def test_a_link_outside_the_roots_with_a_plugin_image_extension_is_refused(
    roots, tmp_path_factory, guard, name
):
    outside = tmp_path_factory.mktemp("outside-images")
    secret = outside / "secret.avif"
    secret.write_bytes(b"not for a shared project")
    folder = roots / "proj" / "images" / "1_cat"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(folder / "a.png")
    (folder / "a.txt").write_text("cat")
    (folder / name).symlink_to(secret)
    sub = scan_project(roots / "proj", guard=guard).train[0]
    assert "outside the allowed roots" in sub.refused[name]
    r = prepare.preview(roots / "proj", prepare.DatasetOptions(), guard=guard)
    errors = [i["message"] for i in r["issues"] if i["severity"] == "error"]
    assert any(f"1_cat/{name} is a link to" in m for m in errors)


def test_a_plugin_image_inside_the_project_is_still_only_skipped(roots, guard):
    folder = roots / "proj" / "images" / "1_cat"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(folder / "a.png")
    (folder / "a.txt").write_text("cat")
    (folder / "b.avif").write_bytes(b"an avif")
    sub = scan_project(roots / "proj", guard=guard).train[0]
    assert sub.refused == {} and sub.skipped == {"b.avif": "plugin"}
