"""The library core: layout, the UI table, and link passes on real folders with real symlinks."""

import os
from pathlib import Path

import pytest

from lora_workbench import events
from lora_workbench.library import layout
from lora_workbench.library import linker as library
from lora_workbench.library.layout import LIBRARY_FOLDERS, init_library
from lora_workbench.library.linker import link_library, link_trained
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "library"
    init_library(root)
    return root


def make_ui(tmp_path, ui: str) -> Path:
    """A UI folder with every target folder of the table (first candidate)."""
    base = tmp_path / ui
    for candidates, _exts in layout.UI_LAYOUTS[ui].values():
        (base / candidates[0]).mkdir(parents=True, exist_ok=True)
    return base


def put(path: Path, text: str = "model") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def put_lora(path: Path) -> Path:
    """A whole (if tiny) safetensors file: link-trained links only those."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors_header_only(path, {"lora_unet_x.lora_down.weight": ("F16", [4, 8])})
    return path


@pytest.fixture
def comfy_dir(tmp_path):
    return make_ui(tmp_path, "comfyui")


def test_init_creates_the_seed_layout_and_is_idempotent(tmp_path):
    root = tmp_path / "lib"
    made = init_library(root)
    assert sorted(p.name for p in root.iterdir()) == sorted(LIBRARY_FOLDERS)
    assert root in made and len(made) == len(LIBRARY_FOLDERS) + 1
    assert init_library(root) == []


def test_the_ui_table_covers_every_model_category_and_the_expected_folders():
    comfy = layout.UI_LAYOUTS["comfyui"]
    assert comfy["clip"][0] == ("models/text_encoders", "models/clip")
    assert comfy["loras"][0] == ("models/loras",)
    assert {".sft", ".bin"} <= comfy["checkpoints"][1]
    a1111 = layout.UI_LAYOUTS["a1111"]
    assert a1111["checkpoints"][0] == ("models/Stable-diffusion",)
    assert a1111["upscale_models"][0] == ("models/ESRGAN",)
    assert "extensions/sd-webui-controlnet/models" in a1111["controlnet"][0]
    for ui_layout in layout.UI_LAYOUTS.values():
        for _folders, exts in ui_layout.values():
            assert layout.SEED_EXTS <= exts
    assert set(layout.COMFY_FOLDER_NAMES) == set(comfy)


def test_link_creates_links_in_every_ui_and_mirrors_subfolders(tmp_path, lib, comfy_dir):
    a1111 = make_ui(tmp_path, "a1111")
    forge = make_ui(tmp_path, "forge")
    put(lib / "loras" / "style.safetensors")
    put(lib / "loras" / "people" / "anna.safetensors")
    put(lib / "checkpoints" / "sd15.ckpt")
    put(lib / "clip" / "t5.sft")
    report = link_library(lib, {"comfyui": comfy_dir, "a1111": a1111, "forge": forge})
    assert report.ok, report.to_text()
    link = comfy_dir / "models/loras/people/anna.safetensors"
    assert link.is_symlink() and os.readlink(link) == str(lib / "loras/people/anna.safetensors")
    assert (comfy_dir / "models/loras/people").is_dir() and not (
        comfy_dir / "models/loras/people"
    ).is_symlink()
    assert (comfy_dir / "models/text_encoders/t5.sft").is_symlink()
    assert not (a1111 / "models/Lora/t5.sft").exists()  # A1111 has no clip folder in the table
    assert (a1111 / "models/Lora/style.safetensors").is_symlink()
    assert (forge / "models/Stable-diffusion/sd15.ckpt").is_symlink()
    assert len(report.created) == 3 + 3 + 3 + 1 + 0  # loras x2 + ckpt into 3 UIs, clip into ComfyUI
    assert report.link_kinds == {"symlink": 10}
    assert report.summary() == "created 10, fixed 0, removed 0, collisions 0, skipped 0 targets"


def test_only_the_extensions_a_ui_reads_are_linked(lib, comfy_dir, tmp_path):
    a1111 = make_ui(tmp_path, "a1111")
    put(lib / "loras" / "a.bin")
    put(lib / "loras" / "notes.txt")
    put(lib / "loras" / "preview.png")
    link_library(lib, {"comfyui": comfy_dir, "a1111": a1111})
    assert (comfy_dir / "models/loras/a.bin").is_symlink()
    assert not (a1111 / "models/Lora/a.bin").exists()
    assert not (comfy_dir / "models/loras/notes.txt").exists()


def test_a_second_pass_changes_nothing(lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    link_library(lib, {"comfyui": comfy_dir})
    again = link_library(lib, {"comfyui": comfy_dir})
    assert (again.created, again.fixed, again.removed) == ([], [], [])
    assert again.unchanged == 1


def test_link_never_overwrites_a_real_file(lib, comfy_dir):
    put(lib / "loras" / "a.safetensors", "library copy")
    real = put(comfy_dir / "models/loras/a.safetensors", "user's own file")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert not real.is_symlink() and real.read_text() == "user's own file"
    assert [p for p, _ in report.collisions] == [str(real)]
    assert not report.ok and "collisions 1" in report.summary()
    assert "real file" in report.to_text()


def test_a_foreign_link_is_left_alone_even_when_dangling(lib, comfy_dir, tmp_path):
    put(lib / "loras" / "a.safetensors")
    elsewhere = put(tmp_path / "elsewhere" / "a.safetensors")
    foreign = comfy_dir / "models/loras/a.safetensors"
    foreign.symlink_to(elsewhere)
    dangling = comfy_dir / "models/loras/old.safetensors"
    dangling.symlink_to(tmp_path / "gone" / "old.safetensors")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert os.readlink(foreign) == str(elsewhere)
    assert dangling.is_symlink()  # not ours: never removed
    assert len(report.collisions) == 1 and report.removed == []


def test_removed_library_files_lose_their_links(lib, comfy_dir):
    f = put(lib / "loras" / "sub" / "a.safetensors")
    link_library(lib, {"comfyui": comfy_dir})
    f.unlink()
    report = link_library(lib, {"comfyui": comfy_dir})
    assert report.removed == [str(comfy_dir / "models/loras/sub/a.safetensors")]
    assert not os.path.lexists(comfy_dir / "models/loras/sub/a.safetensors")


def test_a_renamed_file_is_relinked_under_its_new_name(lib, comfy_dir):
    put(lib / "loras" / "old.safetensors")
    link_library(lib, {"comfyui": comfy_dir})
    (lib / "loras" / "old.safetensors").rename(lib / "loras" / "new.safetensors")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert len(report.created) == 1 and len(report.removed) == 1
    assert (comfy_dir / "models/loras/new.safetensors").is_symlink()
    assert not os.path.lexists(comfy_dir / "models/loras/old.safetensors")


def test_our_link_pointing_at_a_moved_file_is_fixed(lib, comfy_dir):
    # loras/a.safetensors moved from the checkpoints category: the link name stays, its target changes.
    put(lib / "loras" / "a.safetensors")
    link = comfy_dir / "models/loras/a.safetensors"
    link.symlink_to(lib / "checkpoints" / "a.safetensors")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert report.fixed == [str(link)]
    assert os.readlink(link) == str(lib / "loras/a.safetensors")


def test_links_through_the_library_real_path_count_as_ours(tmp_path, comfy_dir):
    real = tmp_path / "real-library"
    init_library(real)
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    put(real / "loras" / "gone.safetensors").unlink()
    stale = comfy_dir / "models/loras/gone.safetensors"
    stale.symlink_to(real / "loras" / "gone.safetensors")
    report = link_library(alias, {"comfyui": comfy_dir})
    assert report.removed == [str(stale)]


def test_missing_library_root_changes_nothing_and_says_so(tmp_path, lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    link_library(lib, {"comfyui": comfy_dir})
    (lib / "loras" / "a.safetensors").unlink()
    lib.rename(tmp_path / "unmounted")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert report.library_missing and not report.ok
    assert os.path.lexists(comfy_dir / "models/loras/a.safetensors")  # dangling, but kept
    assert "does not exist" in report.summary() and "nothing changed" in report.summary()


def test_a_missing_ui_folder_is_skipped_and_the_others_still_link(tmp_path, lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    a1111 = tmp_path / "a1111-only-lora"
    (a1111 / "models/Lora").mkdir(parents=True)
    put(lib / "vae" / "v.safetensors")
    report = link_library(lib, {"a1111": a1111, "forge": tmp_path / "no-forge", "comfyui": comfy_dir})
    assert (comfy_dir / "models/loras/a.safetensors").is_symlink()
    assert (a1111 / "models/Lora/a.safetensors").is_symlink()
    assert any("Forge" in s and "does not exist" in s for s in report.skipped_targets)
    assert any("A1111 vae" in s for s in report.skipped_targets)
    assert report.ok  # a missing UI folder is not an error


def test_comfy_clip_goes_to_the_first_existing_candidate(tmp_path, lib):
    comfy = tmp_path / "OldComfy"
    (comfy / "models/clip").mkdir(parents=True)
    put(lib / "clip" / "clip_l.safetensors")
    link_library(lib, {"comfyui": comfy})
    assert (comfy / "models/clip/clip_l.safetensors").is_symlink()


def test_a_target_that_is_a_link_into_the_library_is_not_linked_into(tmp_path, lib):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    (comfy / "models/loras").symlink_to(lib / "loras", target_is_directory=True)
    put(lib / "loras" / "a.safetensors")
    report = link_library(lib, {"comfyui": comfy})
    assert sorted(os.listdir(lib / "loras")) == ["a.safetensors"]
    assert any("inside the library" in s for s in report.skipped_targets)


def test_partial_downloads_and_hidden_files_are_not_linked(lib, comfy_dir):
    for name in (
        "a.safetensors.part",
        "b.safetensors.crdownload",
        "c.tmp",
        ".d.safetensors",
        "e.safetensors.download",
    ):
        put(lib / "loras" / name)
    report = link_library(lib, {"comfyui": comfy_dir})
    assert report.created == []
    assert layout.is_partial_download("x.safetensors.part") and not layout.is_partial_download(
        "x.safetensors"
    )


def test_dry_run_changes_nothing_but_reports_the_plan(lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    report = link_library(lib, {"comfyui": comfy_dir}, dry_run=True)
    assert report.created == [str(comfy_dir / "models/loras/a.safetensors")]
    assert os.listdir(comfy_dir / "models/loras") == []
    assert report.summary().startswith("dry run: created 1")


def test_categories_limit_the_pass(lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    put(lib / "vae" / "v.safetensors")
    report = link_library(lib, {"comfyui": comfy_dir}, categories=["vae"])
    assert report.categories == ["vae"]
    assert os.listdir(comfy_dir / "models/loras") == []
    assert (comfy_dir / "models/vae/v.safetensors").is_symlink()


def test_a_file_in_the_way_of_a_subfolder_is_a_collision(lib, comfy_dir):
    put(lib / "loras" / "people" / "a.safetensors")
    put(comfy_dir / "models/loras/people", "a file named like the folder")
    report = link_library(lib, {"comfyui": comfy_dir})
    assert len(report.collisions) == 1 and "in the way" in report.collisions[0][1]


def test_hard_links_are_the_fallback_when_symlinks_fail(lib, comfy_dir, monkeypatch):
    put(lib / "loras" / "a.safetensors")
    put(lib / "loras" / "b.safetensors")

    def no_symlinks(*a, **k):
        raise OSError(1, "A required privilege is not held by the client")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    report = link_library(lib, {"comfyui": comfy_dir})
    assert report.link_kinds == {"hardlink": 2}
    assert "hardlink 2" in report.to_text()
    assert os.path.samefile(comfy_dir / "models/loras/a.safetensors", lib / "loras/a.safetensors")
    again = link_library(lib, {"comfyui": comfy_dir})  # our hard links are recognised, not collisions
    assert again.ok and again.unchanged == 2 and again.created == []


def test_a_link_that_cannot_be_made_is_an_error_not_a_crash(lib, comfy_dir, monkeypatch):
    put(lib / "loras" / "a.safetensors")

    def fail(*a, **k):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "symlink", fail)
    monkeypatch.setattr(os, "link", fail)
    report = link_library(lib, {"comfyui": comfy_dir})
    assert len(report.errors) == 1 and not report.ok and "errors 1" in report.summary()


def test_a_folder_link_falls_back_to_a_junction_on_windows(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(os, "symlink", lambda *a, **k: (_ for _ in ()).throw(OSError("no privilege")))
    monkeypatch.setattr(library.sys, "platform", "win32")
    monkeypatch.setattr(library, "_make_junction", lambda src, dst: made.append((src, dst)))
    assert library.make_link(str(tmp_path / "src"), str(tmp_path / "dst"), is_dir=True) == "junction"
    assert made == [(str(tmp_path / "src"), str(tmp_path / "dst"))]


def test_the_report_renders_as_dict_and_text(lib, comfy_dir):
    put(lib / "loras" / "a.safetensors")
    got = []
    events.subscribe(lambda e, d: got.append((e, d)))
    report = link_library(lib, {"comfyui": comfy_dir})
    d = report.to_dict()
    assert d["created"] == 1 and d["collisions"] == 0 and d["ok"] is True
    assert d["summary"] == report.summary()
    assert got[-1][0] == events.LIBRARY and got[-1][1]["trigger"] == "link"
    assert got[-1][1]["library"] == str(lib)
    assert report.to_text().splitlines()[0] == report.summary()


def test_default_ui_dirs_follow_env_and_seed_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    monkeypatch.delenv("A1111_PATH", raising=False)
    monkeypatch.setenv("FORGE_PATH", str(tmp_path / "forge"))
    uis = layout.default_ui_dirs()
    assert "comfyui" not in uis
    assert uis["a1111"] == Path.home() / "stable-diffusion-webui"
    assert uis["forge"] == tmp_path / "forge"


# --------------------------------------------------------------------------- trained LoRAs
def test_trained_loras_follow_the_output_suffix_rule(tmp_path, comfy_dir):
    project = tmp_path / "project"
    put_lora(project / "output" / "anna.safetensors")
    put_lora(project / "output-v2" / "anna.safetensors")
    put_lora(project / "output-v2" / "anna-000002.safetensors")
    put(project / "output" / "sample" / "img.png")
    put(project / "images" / "x.safetensors")  # not an output folder
    a1111 = make_ui(tmp_path, "a1111")
    report = link_trained(project, {"comfyui": comfy_dir, "a1111": a1111, "forge": tmp_path / "nope"})
    loras = comfy_dir / "models/loras"
    assert sorted(os.listdir(loras)) == [
        "anna-000002-v2.safetensors",
        "anna-v2.safetensors",
        "anna.safetensors",
    ]
    assert os.readlink(loras / "anna-v2.safetensors") == str(project / "output-v2/anna.safetensors")
    assert (a1111 / "models/Lora/anna.safetensors").is_symlink()
    assert len(report.created) == 6 and len(report.skipped_targets) == 1


def test_trained_loras_in_run_subfolders_keep_their_subpath(tmp_path, comfy_dir):
    project = tmp_path / "project"
    put_lora(project / "output" / "run-001" / "x.safetensors")
    put_lora(project / "output-v3" / "run-001" / "x.safetensors")
    link_trained(project, {"comfyui": comfy_dir})
    assert (comfy_dir / "models/loras/run-001/x.safetensors").is_symlink()
    assert (comfy_dir / "models/loras/run-001/x-v3.safetensors").is_symlink()


def test_link_trained_leaves_library_links_alone_and_cleans_its_own(tmp_path, lib, comfy_dir):
    put(lib / "loras" / "lib.safetensors")
    link_library(lib, {"comfyui": comfy_dir})
    project = tmp_path / "project"
    epoch = put_lora(project / "output" / "e1.safetensors")
    link_trained(project, {"comfyui": comfy_dir})
    epoch.unlink()
    report = link_trained(project, {"comfyui": comfy_dir})
    assert report.removed == [str(comfy_dir / "models/loras/e1.safetensors")]
    assert (comfy_dir / "models/loras/lib.safetensors").is_symlink()


def test_link_trained_never_links_a_cut_off_lora(tmp_path, comfy_dir):
    project = tmp_path / "project"
    put_lora(project / "output" / "run-001" / "whole.safetensors")
    cut = put_lora(project / "output" / "run-001" / "cut.safetensors")
    os.truncate(cut, cut.stat().st_size - 8)  # the disk filled while it was written
    put(project / "output" / "run-001" / "empty.safetensors", "")
    report = link_trained(project, {"comfyui": comfy_dir})
    assert os.listdir(comfy_dir / "models/loras/run-001") == ["whole.safetensors"]
    said = " ".join(report.messages)
    assert f"{cut} is not a whole LoRA file" in said and "empty.safetensors is not a whole LoRA" in said


def test_link_trained_on_a_missing_project_changes_nothing(tmp_path, comfy_dir):
    report = link_trained(tmp_path / "nope", {"comfyui": comfy_dir})
    assert report.library_missing and not report.ok


def test_link_trained_dry_run_changes_nothing(tmp_path, comfy_dir):
    project = tmp_path / "project"
    put_lora(project / "output" / "x.safetensors")
    report = link_trained(project, {"comfyui": comfy_dir}, dry_run=True)
    assert len(report.created) == 1 and os.listdir(comfy_dir / "models/loras") == []
