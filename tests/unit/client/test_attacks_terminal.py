"""Attack: names from untrusted data reach the terminal escaped. A folder, file or caption in a shared
dataset, a title in a shared workflow and a server's error text may hold escape sequences (set the
window title, recolour, rewrite the screen, hide text) or bidi overrides (show a name reversed);
`dataset scan`, `dataset keywords` and `queue` print them as visible escapes, never raw."""

from __future__ import annotations

import json

import pytest

from lora_workbench import cli, terminal
from tests.unit.client.test_attacks_queue_client import body, run_cli, start
from tests.unit.dataset.dataset_fakes import image, make_subset

HOSTILE = ["\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m", "\u202e", "\u2066", "\x7f", "\r", "\x08"]
EVIL = "".join(HOSTILE)


def assert_escaped(text: str) -> None:
    for seq in HOSTILE:
        assert seq not in text, f"{seq!r} reached the terminal raw"


@pytest.mark.parametrize("seq", [*HOSTILE, "\n", "\t", "\x00", "\u2028", "\ud800"])
def test_a_name_is_shown_with_every_control_escaped(seq):
    out = terminal.shown(f"a{seq}b")
    assert out.startswith("a\\") and out.endswith("b") and out.isprintable()


def test_messages_keep_their_line_breaks_and_tabs():
    assert terminal.safe("one\n\ttwo\x1b[31m") == "one\n\ttwo\\x1b[31m"


def test_dataset_scan_prints_hostile_folder_file_and_caption_names_escaped(tmp_path, capsys):
    root = tmp_path / "p"
    folder = make_subset(root, f"1_{EVIL.replace(chr(13), '')}", 1, caption=f"tag{EVIL}, ok")
    image(folder / f"x{EVIL}.png")  # no caption: named as an example of missing captions
    assert cli.main(["dataset", "scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07" in out
    assert_escaped(out)


def test_dataset_keywords_prints_hostile_tags_escaped(tmp_path, capsys):
    root = tmp_path / "p"
    make_subset(root, "1_A", 1, caption=f"tag{EVIL}, ok")
    assert cli.main(["dataset", "keywords", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tag\\x1b]0;pwned" in out
    assert_escaped(out)


@pytest.mark.asyncio
async def test_queue_prints_a_servers_hostile_rejection_escaped(aiohttp_server, tmp_path, capsys):
    reply = {"error": {"message": f"bad{EVIL}"}, "node_errors": {"9": {"errors": [{"message": EVIL}]}}}
    _fake, url = await start(aiohttp_server, **{"/prompt": body(json.dumps(reply), status=400)})
    assert await run_cli(tmp_path, url, "--poll") == 2
    err = capsys.readouterr().err
    assert "rejected the workflow" in err
    assert_escaped(err)


@pytest.mark.asyncio
async def test_queue_prints_a_hostile_execution_error_escaped(aiohttp_server, tmp_path, capsys):
    failed = {
        "status_str": "error",
        "completed": False,
        "messages": [["execution_error", {"node_id": "9", "node_type": EVIL, "exception_message": EVIL}]],
    }

    async def history(_request):
        from aiohttp import web

        return web.json_response({"p-1": {"outputs": {}, "status": failed}})

    _fake, url = await start(aiohttp_server, **{"/history": history})
    assert await run_cli(tmp_path, url, "--poll", "--timeout", "10") != 0
    captured = capsys.readouterr()
    assert "failed" in captured.err
    assert_escaped(captured.out + captured.err)


@pytest.mark.asyncio
async def test_queue_prints_hostile_workflow_titles_escaped(aiohttp_server, tmp_path, capsys):
    workflow = {"9": {"class_type": "SaveImage", "inputs": {}, "_meta": {"title": f"Save{EVIL}"}}}
    _fake, url = await start(aiohttp_server)
    assert await run_cli(tmp_path, url, "--set", "Nope.x=1", workflow=workflow) == 2
    err = capsys.readouterr().err
    assert "Save\\x1b]0;pwned" in err
    assert_escaped(err)
