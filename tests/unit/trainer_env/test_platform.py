"""Per-OS places, with the platform switched: the data folder and a venv's interpreter."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from lora_workbench.trainer_env import platform
from lora_workbench.trainer_env.layout import Layout


def switch(monkeypatch, sys_platform: str, os_name: str) -> None:
    monkeypatch.setattr(platform, "sys", SimpleNamespace(platform=sys_platform))
    monkeypatch.setattr(platform, "os", SimpleNamespace(name=os_name, environ=os.environ))


def test_linux_keeps_its_data_in_xdg_data_home(monkeypatch, tmp_path):
    switch(monkeypatch, "linux", "posix")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert platform.default_data_home() == tmp_path / "xdg" / "lora-workbench"


def test_linux_without_xdg_data_home_uses_local_share(monkeypatch):
    switch(monkeypatch, "linux", "posix")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert platform.default_data_home() == Path.home() / ".local" / "share" / "lora-workbench"


def test_macos_keeps_its_data_in_application_support(monkeypatch):
    switch(monkeypatch, "darwin", "posix")
    assert platform.default_data_home() == Path.home() / "Library" / "Application Support" / "lora-workbench"


def test_windows_keeps_its_data_in_localappdata(monkeypatch, tmp_path):
    switch(monkeypatch, "win32", "nt")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert platform.default_data_home() == tmp_path / "Local" / "lora-workbench"


@pytest.mark.parametrize(
    ("sys_platform", "os_name", "tail"),
    [
        ("linux", "posix", ("bin", "python")),
        ("darwin", "posix", ("bin", "python")),
        ("win32", "nt", ("Scripts", "python.exe")),
    ],
)
def test_a_venvs_interpreter_is_where_each_os_puts_it(monkeypatch, sys_platform, os_name, tail):
    switch(monkeypatch, sys_platform, os_name)
    venv = Path("/data/venv")
    assert platform.venv_python(venv) == venv.joinpath(*tail)


def test_a_builds_python_follows_the_platform(monkeypatch, tmp_path):
    switch(monkeypatch, "win32", "nt")
    build = Layout(tmp_path).build("48d368fa5577-torch2.14.1-abcdef")
    assert build.python == build.venv / "Scripts" / "python.exe"


def test_lora_workbench_home_wins_over_the_settings_file_and_the_default(monkeypatch, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{"home": "%s"}' % (tmp_path / "from-file"), encoding="utf-8")
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(settings))
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "from-env"))
    assert platform.data_home() == tmp_path / "from-env"
    monkeypatch.delenv("LORA_WORKBENCH_HOME")
    assert platform.data_home() == tmp_path / "from-file"


def test_the_browser_cannot_set_the_data_folder(monkeypatch, tmp_path):
    from lora_workbench import settings
    from lora_workbench.settings import SettingsError

    with pytest.raises(SettingsError, match="`home` can only be changed by editing"):
        settings.update({"home": str(tmp_path)})
