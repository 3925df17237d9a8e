"""`lora-workbench trainer ...`: the pins, status, and sentences (exit 1) instead of tracebacks."""

from __future__ import annotations

import json

from lora_workbench.cli import main
from lora_workbench.trainer_env import install as inst
from lora_workbench.trainer_env.layout import Layout
from tests.unit.trainer_env.trainer_fakes import FakeTools, make_repo, request


def test_pins_prints_the_commit_the_integration_tier_is_checked_against(capsys):
    assert main(["trainer", "pins", "--field", "ref"]) == 0
    assert capsys.readouterr().out.strip() == "48d368fa557731ad0488c07304dfeba8c07910eb"


def test_status_shows_the_default_when_nothing_is_installed(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KOHYA_SS_PATH", raising=False)
    assert main(["trainer", "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["managed"] is None and info["in_use"]["from"] == "default (~/kohya_ss)"
    assert info["pinned"]["ref"].startswith("48d368fa")


def test_status_names_the_managed_trainer_and_kohya_ss_path_winning(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KOHYA_SS_PATH", raising=False)
    monkeypatch.delenv("KOHYA_PYTHON", raising=False)
    src, commit = make_repo(tmp_path / "repo")
    report = inst.install(request(src, commit), layout=Layout.default(), runner=FakeTools())
    assert main(["trainer", "status"]) == 0
    out = capsys.readouterr().out
    assert f"in use:     {report.src} (from managed)" in out and f"managed:    {report.build}" in out
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "kohya_ss"))
    main(["trainer", "status"])
    assert "(from KOHYA_SS_PATH)" in capsys.readouterr().out


def test_update_without_an_install_is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    assert main(["trainer", "update"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No managed sd-scripts in") and "Traceback" not in err


def test_a_bad_torch_spec_is_refused_before_anything_is_made(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    assert main(["trainer", "install", "--torch", "torch==2.4.1 numpy==2"]) == 1
    assert "'numpy==2' is not a pin of torch" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def test_remove_with_nothing_installed_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    assert main(["trainer", "remove"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
