"""The node help pages (web/docs/<NodeName>.md, shown in ComfyUI's node help panel) are generated from
the node classes and the hand-written fragments, and the committed pages are never stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_node_docs", REPO / "scripts" / "gen_node_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pages(gen, pack):
    return gen.render_all(pack)


def test_every_node_has_a_committed_help_page_that_is_not_stale(gen, pages):
    stale = gen.stale_pages(pages)
    assert not stale, f"stale help pages {stale}: run `python scripts/gen_node_docs.py` and commit web/docs/"
    assert set(pages) == {p.stem for p in (REPO / "web" / "docs").glob("*.md")}


def test_a_page_names_every_input_and_output_with_its_tooltip(pack, pages):
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        page = pages[name]
        types = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for inp in types.get(group, {}):
                assert f"- **`{inp}`** (" in page, (name, inp)
        for out in getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES:
            assert f"- **`{out}`** (" in page, (name, out)
        assert "## Typical chain" in page, name


def test_the_trainer_and_its_option_nodes_say_what_sd_scripts_receives(pack, pages):
    # From the one settings table the widgets come from: every setting, on its own node's page.
    from lora_workbench.training import settings, settings_doc

    for group in settings.GROUPS:
        page = pages[group.node]
        for s in settings.in_group(group.key):
            line = next(ln for ln in page.splitlines() if ln.startswith(f"- **`{s.name}`** ("))
            facts = settings_doc.help_facts(s).split(";")[0].replace("<", "&lt;").replace(">", "&gt;")
            assert facts in line, (group.node, s.name)


def test_the_faq_is_where_it_belongs(pages):
    dataset = pages["DatasetSubsetWeights"].split("## FAQ", 1)[1]
    assert "Repeats, epochs, steps" in dataset and "Steps per epoch" in dataset
    train = pages["KohyaLoRATrain"].split("## FAQ", 1)[1]
    assert "network_alpha" in train and "unet_lr" in train and "text_encoder_lr" in train
    assert "Which optimizer?" in pages["KohyaOptimizerOptions"].split("## FAQ", 1)[1]
    assert "sample_prompts" in pages["KohyaSamplingOptions"].split("## FAQ", 1)[1]
    files = pages["KohyaModelFiles"].split("## FAQ", 1)[1]
    assert "FLUX.1: `clip_l`, `t5xxl` and `ae`" in files and "scaled" in files
    assert "blocks_to_swap" in pages["KohyaFamilyOptions"].split("## FAQ", 1)[1]
    assert "additional_parameters" in pages["KohyaGuiConfigOptions"].split("## FAQ", 1)[1]


def test_pages_hold_no_machine_paths_and_no_bare_html_tags(pages, monkeypatch, gen, pack, tmp_path):
    # Generated on a machine with settings and a library: the pages must not change.
    monkeypatch.setenv("SD_MODELS_PATH", str(tmp_path / "my-library"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gen.render_all(pack) == pages
    for name, page in pages.items():
        assert str(tmp_path) not in page and "/root/" not in page, name
        items = [ln for ln in page.splitlines() if ln.startswith("- **`")]
        assert items and not any("<" in ln for ln in items), name  # `<name>` would vanish as an HTML tag


def test_file_lists_are_described_not_listed(pages):
    # The trainer's list holds checkpoints and "diffusion_models/"-prefixed names: both described.
    assert "a file from ComfyUI's checkpoints or diffusion_models folders" in pages["KohyaLoRATrain"]
    assert "a file from ComfyUI's text_encoders folders" in pages["KohyaModelFiles"]
    assert not any("\0" in page for page in pages.values())  # no placeholder left in a page
    assert "`(from trained_lora)`" in pages["LoadTrainedLoRA"]
    assert "a file from ComfyUI's loras folders" in pages["LoadTrainedLoRA"]
