"""A shared project cannot move musubi-tuner's cache writes out of the allowed roots: every cache folder
the dataset config names is made as a plain folder inside the project, a link on the way refused
(real symlinks, as a shared project would hold them)."""

from __future__ import annotations

import os

import pytest

from lora_workbench.errors import PathNotAllowed
from lora_workbench.training import write_places
from lora_workbench.training.backends.musubi.dataset_config import cache_folders
from tests.unit.training.musubi_fakes import build, make_project, target


@pytest.fixture
def project(tmp_path, monkeypatch):
    return make_project(tmp_path, monkeypatch)


def folders(project) -> list[str]:
    return cache_folders(build(target(project, "wan")).files["dataset.toml"])


def test_the_cache_folders_are_made_plain_inside_the_project(project, tmp_path):
    wanted = folders(project)
    assert write_places.make_cache_folders(project, wanted, [tmp_path]) == []
    for folder in wanted:
        assert os.path.isdir(folder) and not os.path.islink(folder)
        assert folder.startswith(str(project / "cache" / "musubi" / "wan"))
    assert write_places.make_cache_folders(project, wanted, [tmp_path]) == []  # the next run reuses them


@pytest.mark.parametrize("link", ["cache", "cache/musubi/wan", "cache/musubi/wan/01_subject"])
def test_a_linked_cache_folder_is_refused_from_a_workflow(project, tmp_path, link):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    place = project / link
    place.parent.mkdir(parents=True, exist_ok=True)
    place.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed, match="is a link"):
        write_places.make_cache_folders(project, folders(project), [tmp_path])
    assert list(outside.iterdir()) == []


def test_the_command_line_follows_the_link_and_says_so(project, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project / "cache").symlink_to(outside, target_is_directory=True)
    notes = write_places.make_cache_folders(project, folders(project), None)
    assert notes == [f"{project / 'cache'} is a link to {outside}; the run caches there."]


def test_a_cache_folder_outside_the_project_is_refused(project, tmp_path):
    with pytest.raises(PathNotAllowed, match="not inside the project"):
        write_places.make_cache_folders(project, [str(tmp_path / "elsewhere")], [tmp_path])
    with pytest.raises(PathNotAllowed, match="not inside the project"):
        write_places.make_cache_folders(project, [str(project / "cache" / ".." / ".." / "x")], [tmp_path])


def test_a_workflow_run_refuses_a_subset_cache_folder_that_links_out_before_any_step_runs(tmp_path):
    """The Job names musubi's per-subset cache folders; train.py makes them inside the project before
    the first step, so a shared project whose cache/musubi/<family>/<NN_subset> links outside is refused
    (the marker check alone only saw the family folder)."""
    from lora_workbench.errors import PathNotAllowed, WorkbenchError
    from lora_workbench.training import write_places

    project = tmp_path / "proj"
    family = project / "cache" / "musubi" / "wan"
    family.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (family / "01_subject").symlink_to(outside)
    with pytest.raises((PathNotAllowed, WorkbenchError)):
        write_places.make_cache_folders(project, [str(family / "01_subject")], [str(project)])
    assert not any(outside.iterdir())
