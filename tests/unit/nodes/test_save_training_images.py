"""The Save Training Images node as ComfyUI calls it: INPUT_IS_LIST, so every input is a list; IMAGE
batches [B,H,W,C] floats and MASK [B,H,W] or [H,W] (numpy stands in for torch, which has the same shape
and indexing); captions as a widget text, one per line, or a caption node's list output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lora_workbench.errors import PathNotAllowed, ValidationError


@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["SaveTrainingImages"]()
    comfy.modules["server"].PromptServer.instance = None


def batch(n, h=64, w=64, c=3):
    """n distinct images as ComfyUI's IMAGE (floats 0..1)."""
    return np.stack([np.full((h, w, c), (i + 1) / (n + 1), dtype=np.float32) for i in range(n)])


def run(node, roots, images, **kw):
    """Call the node the way ComfyUI does with INPUT_IS_LIST: each input a list."""
    inputs = {"project_folder": str(roots / "proj"), "subject": "cat", "repeats": 2, **kw}
    listed = {k: v if isinstance(v, list) else [v] for k, v in inputs.items()}
    return node.save(images=images if isinstance(images, list) else [images], **listed)


def captions_on_disk(roots) -> list[str]:
    return sorted(p.read_text(encoding="utf-8") for p in (roots / "proj" / "images" / "2_cat").glob("*.txt"))


def test_the_node_is_an_output_node_next_to_the_dataset_node_with_tooltips(pack):
    cls = pack.NODE_CLASS_MAPPINGS["SaveTrainingImages"]
    dataset = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]
    assert cls.OUTPUT_NODE and cls.INPUT_IS_LIST and cls.CATEGORY == dataset.CATEGORY
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["SaveTrainingImages"] == "Save Training Images"
    spec = cls.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (_, opts) in spec[group].items():
            assert opts.get("tooltip"), name
    assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) == 2


def test_one_caption_widget_text_captions_every_image(node, roots):
    out = run(node, roots, batch(3), captions="a cat", trigger_word="ohwx")
    assert captions_on_disk(roots) == ["ohwx, a cat\n"] * 3
    assert out["result"][0] == str(roots / "proj") and "3 new" in out["result"][1]


def test_one_line_per_image_captions_each_in_batch_order(node, roots):
    run(node, roots, batch(2), captions="first\nsecond")
    assert captions_on_disk(roots) == ["first\n", "second\n"]


def test_a_caption_nodes_list_output_captions_each_image(node, roots):
    run(node, roots, batch(3), captions=["one, a", "two, b", "three, c"])
    assert captions_on_disk(roots) == ["one, a\n", "three, c\n", "two, b\n"]


def test_several_image_batches_are_one_list_of_images(node, roots):
    run(node, roots, [batch(2), batch(1, h=32)], captions=["a", "b", "c"])
    assert len(captions_on_disk(roots)) == 3


def test_a_caption_list_of_the_wrong_length_is_a_sentence(node, roots):
    with pytest.raises(ValidationError, match=r"captions holds 2 captions for 3 image\(s\)"):
        run(node, roots, batch(3), captions=["a", "b"])


def test_one_mask_for_the_batch_becomes_each_images_alpha(node, roots):
    mask = np.zeros((64, 64), dtype=np.float32)
    mask[:, :32] = 1.0
    run(node, roots, batch(2), captions="x", masks=mask)
    for png in (roots / "proj" / "images" / "2_cat").glob("*.png"):
        with Image.open(png) as im:
            assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 255 and im.getpixel((63, 0))[3] == 0
    assert (roots / "proj" / "images" / "2_cat" / ".lora-workbench-alpha-mask").is_file()


def test_a_mask_count_that_fits_no_image_count_is_a_sentence(node, roots):
    with pytest.raises(ValidationError, match=r"masks holds 2 masks for 3 image\(s\)"):
        run(node, roots, batch(3), masks=np.zeros((2, 64, 64), dtype=np.float32))


def test_an_rgba_and_a_grey_image_are_saved(node, roots):
    run(node, roots, [batch(1, c=4), batch(1, c=1)], captions="x")
    assert len(captions_on_disk(roots)) == 2


def test_the_project_folder_outside_the_roots_is_refused(node, roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    with pytest.raises(PathNotAllowed):
        run(node, roots, batch(1), project_folder=str(outside / "proj"))
    assert list(outside.iterdir()) == []


def test_the_output_feeds_the_dataset_node(pack, node, roots):
    folder, _ = run(node, roots, batch(2), captions="a cat", trigger_word="ohwx")["result"]
    ds, _ = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]().prepare(folder, width=64, height=64)["result"]
    assert [(s.name, s.images, s.repeats) for s in ds.subsets] == [("cat", 2, 2)]
