"""Renaming subset folders to N_Subject: planned, journaled, refused on clashes, recoverable after a crash."""

import os

import pytest
from PIL import Image

from lora_workbench.dataset import prepare, rename
from lora_workbench.errors import ValidationError, WorkbenchError
from tests.unit.dataset.dataset_fakes import opts


def make_subset(root, dirname, n):
    folder = root / "images" / dirname
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (64, 64)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(dirname)
    return folder


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    make_subset(root, "1_A", 7)
    make_subset(root, "1_B", 3)
    make_subset(root, "C", 1)
    return root


def apply_rename(root, weights="", dry_run=False):
    """Rename mode with balanced repeats (equal shares, or the weights given)."""
    options = opts(weights, repeats="weights" if weights else "equal")
    return prepare.prepare_dataset(root, options, apply_mode="rename", dry_run=dry_run)


def names(root):
    return sorted(os.listdir(root / "images"))


def test_rename_mode_renames_to_repeats_and_writes_the_toml(proj):
    ds, text = apply_rename(proj, "")
    assert names(proj) == ["21_C", "3_A", "7_B"]
    assert {os.path.basename(s.image_dir): s.repeats for s in ds.subsets} == {"3_A": 3, "7_B": 7, "21_C": 21}
    assert "3_A" in (proj / "dataset.toml").read_text()
    assert not rename.journal_path(proj).exists()
    # applying again is a no-op
    _, text = apply_rename(proj, "")
    assert "nothing renamed" in text and names(proj) == ["21_C", "3_A", "7_B"]


def test_rename_mode_marks_excluded_subsets_with_zero(proj):
    apply_rename(proj, "C: 0")
    assert names(proj) == ["0_C", "3_A", "7_B"]
    # 0_C stays excluded on the next run without weights
    ds, _ = apply_rename(proj, "")
    assert names(proj) == ["0_C", "3_A", "7_B"] and [s.name for s in ds.subsets] == ["A", "B"]


def test_rename_is_refused_when_a_target_exists(proj):
    (proj / "images" / "7_B").write_text("a stray file where 1_B should go")
    with pytest.raises(ValidationError, match="1_B cannot become 7_B"):
        apply_rename(proj, "")
    assert names(proj) == ["1_A", "1_B", "7_B", "C"]
    assert not rename.journal_path(proj).exists()


def test_plan_refuses_an_existing_target_and_changes_nothing(tmp_path):
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "b").mkdir()
    with pytest.raises(ValidationError, match="already exists"):
        rename.plan_renames(tmp_path, [(str(tmp_path / "images/a"), str(tmp_path / "images/b"))])
    assert sorted(os.listdir(tmp_path / "images")) == ["a", "b"]


def _crash_on_second_rename(monkeypatch):
    real = rename._rename_entry
    calls = {"n": 0}

    def flaky(folder, src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("simulated crash")
        return real(folder, src, dst)

    monkeypatch.setattr(rename, "_rename_entry", flaky)
    return real


def test_crash_mid_way_then_finish(proj, monkeypatch):
    real = _crash_on_second_rename(monkeypatch)
    with pytest.raises(WorkbenchError, match="1 of 3 folders were renamed"):
        apply_rename(proj, "")
    assert names(proj) == ["1_B", "3_A", "C"]  # half done
    assert rename.journal_path(proj).exists()
    assert not (proj / "dataset.toml").exists()
    monkeypatch.setattr(rename, "_rename_entry", real)
    report = rename.recover(proj, "finish")
    assert report.found and len(report.steps) == 2
    assert names(proj) == ["21_C", "3_A", "7_B"]
    assert not rename.journal_path(proj).exists()


def test_crash_mid_way_then_roll_back(proj, monkeypatch):
    real = _crash_on_second_rename(monkeypatch)
    with pytest.raises(WorkbenchError):
        apply_rename(proj, "")
    monkeypatch.setattr(rename, "_rename_entry", real)
    report = rename.recover(proj, "rollback")
    assert [os.path.basename(t) for _, t in report.steps] == ["1_A"]
    assert names(proj) == ["1_A", "1_B", "C"]
    assert not rename.journal_path(proj).exists()


def test_next_apply_finishes_an_interrupted_rename(proj, monkeypatch):
    real = _crash_on_second_rename(monkeypatch)
    with pytest.raises(WorkbenchError):
        apply_rename(proj, "")
    monkeypatch.setattr(rename, "_rename_entry", real)
    with pytest.raises(ValidationError, match="interrupted"):
        apply_rename(proj, "", dry_run=True)
    _, text = apply_rename(proj, "")
    assert "Finished an interrupted rename (2 folder(s))" in text
    assert names(proj) == ["21_C", "3_A", "7_B"]


def test_recover_refuses_when_both_names_exist(proj, monkeypatch):
    real = _crash_on_second_rename(monkeypatch)
    with pytest.raises(WorkbenchError):
        apply_rename(proj, "")
    monkeypatch.setattr(rename, "_rename_entry", real)
    (proj / "images" / "1_A").mkdir()  # someone recreated the old name
    with pytest.raises(WorkbenchError, match="Both"):
        rename.recover(proj, "rollback")
    assert rename.journal_path(proj).exists()


def test_recover_without_a_journal_does_nothing(tmp_path):
    report = rename.recover(tmp_path)
    assert not report.found and report.steps == []


def test_a_full_disk_before_the_rename_journal_is_one_sentence_and_nothing_moves(proj, monkeypatch):
    from lora_workbench.errors import DiskFull
    from tests.unit.full_disk import fill_disk_for, temp_files

    before = names(proj)
    fill_disk_for(monkeypatch, rename.JOURNAL_NAME)
    with pytest.raises(
        DiskFull, match=r"The disk is full: .*\.lora-workbench-rename\.json could not be written"
    ):
        apply_rename(proj)
    assert names(proj) == before and not rename.journal_path(proj).exists() and temp_files(proj) == []
