"""The last sampling round's images, picked by the names sd-scripts gives its samples."""

from __future__ import annotations

import os

from lora_workbench.training.samples import last_round, sampling_round


def touch(folder, name, t):
    p = folder / name
    p.write_bytes(b"x")
    os.utime(p, (t, t))
    return str(p)


def test_names_say_epoch_or_step_and_prompt():
    assert sampling_round("anna_e000003_01_20251011120000.png") == ("epoch", 3, 1)
    assert sampling_round("e000002_00_20251011120000_42.png") == ("epoch", 2, 0)  # no output name
    assert sampling_round("x_000120_00_20251011120000_42.png") == ("step", 120, 0)
    assert sampling_round("loss.png") is None and sampling_round("anna.safetensors") is None


def test_the_newest_round_in_prompt_order(tmp_path):
    e1 = [touch(tmp_path, f"anna_e000001_{i:02d}_20251011120000.png", 100 + i) for i in range(2)]
    e2 = [touch(tmp_path, f"anna_e000002_{i:02d}_20251011121000.png", 200 - i) for i in range(3)]
    assert last_round(e1 + e2 + [str(tmp_path / "notes.txt")]) == e2
    assert last_round(e1) == e1
    assert (
        last_round([]) == [] and last_round([str(tmp_path / "missing_e000001_00_20251011120000.png")]) == []
    )
