"""Attacks on Kohya GUI Config Options: the config file swapped for a link to an outside config between
the roots check and the read (once, and by a racing thread). The node parses only what it opened and
checked inside the roots; an outside config is never imported, and its size never reaches IS_CHANGED."""

from __future__ import annotations

import json

import pytest

from lora_workbench import paths
from lora_workbench.errors import WorkbenchError
from tests.unit.nodes.test_attacks_training_tab import Swapper


@pytest.fixture
def configs(pack, roots, tmp_path_factory):
    inside = roots / "gui.json"
    inside.write_text(json.dumps({"network_dim": 4}), encoding="utf-8")
    outside = tmp_path_factory.mktemp("outside") / "gui.json"
    outside.write_text(json.dumps({"network_dim": 99, "padding": "x" * 12000}), encoding="utf-8")
    return inside, outside


@pytest.fixture
def gui(pack):
    return pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]


def swap_after_check(monkeypatch, file, target):
    """paths.confine answers for `file`, then the file becomes a link to `target` (once)."""
    real = paths.confine

    def confine_then_swap(value, *args, **kwargs):
        got = real(value, *args, **kwargs)
        if str(value) == str(file) and not file.is_symlink():
            file.rename(file.with_name(file.name + ".aside"))
            file.symlink_to(target)
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)


def test_a_config_swapped_for_a_link_after_the_check_is_not_imported(gui, configs, monkeypatch):
    inside, outside = configs
    swap_after_check(monkeypatch, inside, outside)
    with pytest.raises(WorkbenchError, match="changed while it was opened|symbolic link|cannot be opened"):
        gui().collect(config_file=str(inside), unique_id="3")


def test_a_config_swapped_after_the_check_never_gives_is_changed_the_outside_file(gui, configs, monkeypatch):
    inside, outside = configs
    swap_after_check(monkeypatch, inside, outside)
    assert f":{outside.stat().st_size}:" not in gui.IS_CHANGED(config_file=str(inside))


def test_a_racing_swap_of_the_config_never_imports_the_outside_one(gui, configs):
    inside, outside = configs
    imported = []
    with Swapper(inside, outside):
        for _ in range(500):
            try:
                options, _report = gui().collect(config_file=str(inside), unique_id="3")["result"]
            except WorkbenchError:
                continue
            imported.append(options.base["network_dim"])
    assert 99 not in imported


def test_a_config_that_stays_put_is_imported_and_fingerprinted(gui, configs):
    inside, _ = configs
    options, _report = gui().collect(config_file=str(inside), unique_id="3")["result"]
    assert options.base["network_dim"] == 4
    assert gui.IS_CHANGED(config_file=str(inside)).startswith(f"{inside}:{inside.stat().st_size}:")
