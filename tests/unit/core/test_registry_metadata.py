"""The Comfy Registry metadata in pyproject.toml: an icon and a banner that exist in the repository at
the URLs given, documentation and issue-tracker URLs, and the rules of the registry's specification."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from PIL import Image

REPO = Path(__file__).resolve().parents[3]
META = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT, COMFY = META["project"], META["tool"]["comfy"]
URLS = PROJECT["urls"]


def repo_file(url: str) -> Path:
    """The file a raw.githubusercontent.com URL of this repository's main branch names."""
    owner_repo = URLS["Repository"].removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert url.startswith(prefix), f"{url} is not a raw URL of {URLS['Repository']}"
    return REPO / url.removeprefix(prefix)


def test_the_icon_is_in_the_repository_and_within_the_registry_s_limits():
    path = repo_file(COMFY["Icon"])
    with Image.open(path) as img:
        assert img.format in ("PNG", "JPEG", "GIF") and img.width <= 800 and img.height <= 400


def test_the_banner_is_in_the_repository_under_both_names_the_tools_read():
    assert COMFY["Banner"] == COMFY["banner_url"]
    with Image.open(repo_file(COMFY["Banner"])) as img:
        assert img.width > img.height  # a banner is wide


def test_documentation_and_issue_urls_point_at_the_repository():
    repo = URLS["Repository"]
    assert URLS["Documentation"].startswith(repo) and URLS["Issues"] == f"{repo}/issues"


def test_the_node_id_and_version_follow_the_specification():
    name = PROJECT["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", name)
    assert "comfyui" not in name.lower() and not re.search(r"[-_.]{2}", name)
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert isinstance(PROJECT["license"], dict) and COMFY["PublisherId"]
