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


# --------------------------------------------------------------------------- planted cache files
def _planted(project, tmp_path) -> tuple[str, os.PathLike]:
    """A shared project's cache folder holding a link named like the cache file musubi writes for its
    first image, pointing at a file outside the roots."""
    wanted = folders(project)
    victim = tmp_path.parent / f"{tmp_path.name}-victim.safetensors"
    victim.write_bytes(b"someone else's file")
    os.makedirs(wanted[0])
    os.symlink(victim, os.path.join(wanted[0], "img_0512x0512_wan.safetensors"))
    return wanted[0], victim


def test_a_link_planted_in_a_cache_folder_is_refused_before_musubi_writes_through_it(project, tmp_path):
    folder, victim = _planted(project, tmp_path)
    with pytest.raises(PathNotAllowed, match="img_0512x0512_wan.safetensors, a link to"):
        write_places.make_cache_folders(project, folders(project), [tmp_path])
    assert victim.read_bytes() == b"someone else's file"


def test_a_fifo_planted_in_a_cache_folder_is_refused_without_opening_it(project, tmp_path):
    wanted = folders(project)
    os.makedirs(wanted[0])
    os.mkfifo(os.path.join(wanted[0], "img_wan_te.safetensors"))
    with pytest.raises(PathNotAllowed, match="img_wan_te.safetensors, not a plain file"):
        write_places.make_cache_folders(project, wanted, [tmp_path])


def test_a_cache_folder_of_earlier_cache_files_is_reused(project, tmp_path):
    wanted = folders(project)
    os.makedirs(os.path.join(wanted[0], "sub"))
    open(os.path.join(wanted[0], "img_0512x0512_wan.safetensors"), "wb").close()
    assert write_places.make_cache_folders(project, wanted, [tmp_path]) == []


def test_the_command_line_says_where_a_link_in_a_cache_folder_leads(project, tmp_path):
    folder, victim = _planted(project, tmp_path)
    notes = write_places.make_cache_folders(project, folders(project), None)
    assert notes == [f"{folder}/img_0512x0512_wan.safetensors is a link to {victim}; the run caches there."]


# --------------------------------------------------------------------------- sample prompts naming files
MUSUBI_FILE_NAMING = [
    "a cat --i /etc/passwd",
    "a cat --I /home/me/private.png --w 512",
    "a cat --ei ../../secret.png",
    "a cat --ci /etc/shadow",
    "a cat --cn /dev/zero",
    "i /etc/passwd",  # musubi reads the prompt's own start as an option too
    "İ /etc/passwd, a cat",  # re's IGNORECASE takes the dotted capital for "i", in musubi as here
]


@pytest.mark.parametrize("prompts", MUSUBI_FILE_NAMING, ids=[repr(p) for p in MUSUBI_FILE_NAMING])
def test_a_sample_prompt_that_makes_musubi_open_a_file_is_refused_when_the_job_is_built(project, prompts):
    from lora_workbench.errors import ValidationError

    with pytest.raises(
        ValidationError, match=r"sample prompt 1: .* makes musubi-tuner open .* may not name files"
    ):
        build(target(project, "wan"), sample_prompts=prompts)


def test_prompts_musubi_reads_without_a_file_still_sample(project):
    job = build(target(project, "wan"), sample_prompts="a cat --n blurry --f 25\nit is a dog --g 3.5")
    assert job.files["prompts.txt"].splitlines()[0].startswith("a cat --n blurry --f 25")
