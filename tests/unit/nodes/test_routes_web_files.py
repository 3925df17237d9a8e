"""The frontend files: plain ES modules that load nothing from the internet and parse without a build step."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[3] / "web"
FILES = sorted(WEB.rglob("*"))
IMPORT_RE = re.compile(r"""^\s*import\s[^'"]*['"]([^'"]+)['"]""", re.M)


def test_web_holds_only_javascript_modules_and_the_help_pages():
    # ComfyUI loads every .js under web/ as an extension: nothing else (no tests, no tooling) belongs
    # there, except the node help pages the frontend reads from web/docs/<NodeName>.md.
    assert FILES, "web/ is empty"
    others = [
        str(p.relative_to(WEB))
        for p in FILES
        if p.is_file() and p.suffix != ".js" and not (p.parent == WEB / "docs" and p.suffix == ".md")
    ]
    assert not others, others


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".js"], ids=lambda p: p.name)
def test_web_modules_load_nothing_from_the_internet(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"""https?://|//cdn\.|['"]//""", text), f"{path.name} names a remote URL"
    for target in IMPORT_RE.findall(text):
        assert target.startswith(("./", "../../scripts/")), f"{path.name} imports {target}"
        if target.startswith("./"):
            assert (path.parent / target).is_file(), f"{path.name} imports a missing {target}"


def test_one_extension_registers_the_panels():
    registering = [
        p.name for p in FILES if p.suffix == ".js" and "registerExtension(" in p.read_text("utf-8")
    ]
    assert registering == ["lora_workbench.js"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_web_modules_parse_as_es_modules(tmp_path):
    for path in (p for p in FILES if p.suffix == ".js"):
        copy = tmp_path / (path.stem + ".mjs")
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        run = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True)
        assert run.returncode == 0, f"{path.name}: {run.stderr}"
