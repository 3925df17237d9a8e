"""A full disk on REAL kohya sd-scripts (CPU, random SD1.5, 64x64): the trainer's writes are capped
with RLIMIT_FSIZE (an unprivileged stand-in for a full disk; Python ignores SIGXFSZ, so a write past
the cap fails with EFBIG as one past a full disk fails with ENOSPC). The LoRA is cut off while
safetensors writes it: the run fails with the full-disk sentence, run.json says failed, and the cut
file is gone before link-trained or LoadTrainedLoRA's list could see it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import WorkbenchError
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions

from .test_train_features_real import BASE, project  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX"),
]

CAP = 48 * 1024  # bytes: less than the smallest LoRA sd-scripts writes here


def capped_python(real: Path, folder: Path) -> Path:
    """A python that runs the real one with every file it writes capped at CAP bytes."""
    wrapper = folder / "python-capped"
    wrapper.write_text(
        f"#!{real}\nimport os, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({CAP}, {CAP}))\n"
        f"os.execv({str(real)!r}, [{str(real)!r}, *sys.argv[1:]])\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper


def test_real_sd_scripts_cut_off_by_a_full_disk_fails_honestly(
    project,  # noqa: F811
    kohya_python,
    test_checkpoint,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("KOHYA_PYTHON", str(capped_python(Path(kohya_python), tmp_path)))
    opts = TrainOptions.from_values({**BASE, "epochs": 1, "save_every_n_epochs": 0})
    with pytest.raises(WorkbenchError) as exc:
        train.train(opts, dataset_toml.load_project_dataset(project), test_checkpoint)
    said = str(exc.value)
    print(f"\n{said}")
    run_dir = project / "output" / "featproj-001"
    record = json.loads((run_dir / "run.json").read_text())
    assert said.startswith(
        f"Training featproj-001 failed: The disk is full: sd-scripts could not write {run_dir}"
    )
    assert record["state"] == "failed" and record["error"].startswith("The disk is full:")
    assert record.get("removed_cut_off") == ["featproj.safetensors"]
    assert not [p for p in os.listdir(run_dir) if p.endswith(".safetensors")]
