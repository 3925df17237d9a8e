"""Save every example workflow from the current frontend (graph.serialize() in a real ComfyUI), so the
JSON carries every widget, input and output of each node as the frontend saves them today.

    . .integration/env && python scripts/resave_examples.py [--check] [--thumbnails] [NAME ...]

Starts the integration tier's ComfyUI (CPU, a temp base folder) with this checkout as a custom node,
loads each example_workflows/*.json in Chromium (tests/integration/browser/, `npm install` there), and
writes what the frontend saved back, after checking that widget values, positions, links and groups
are unchanged (a change there is the author's to make, not the re-save's; a node may gain new widgets
after its saved ones, with their defaults). --check writes nothing and exits 1 when a file would
change. --thumbnails then retakes their thumbnails with the browser
test's thumbnail step alone, on the same server (the whole browser test, with
LORA_WORKBENCH_UPDATE_THUMBNAILS=1, also trains, which a new example's picture does not need). NAMEs
(example_workflows/<NAME>.json) limit both to those examples; without one, every example.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.conftest import start_comfy, stop_comfy  # noqa: E402

DRIVER = REPO / "tests" / "integration" / "browser" / "resave_examples.mjs"
THUMBNAILS_DRIVER = DRIVER.with_name("drive.mjs")
CHROMIUM = os.environ.get("LORA_WORKBENCH_CHROMIUM", "/usr/bin/chromium")
KEPT = ("widgets_values", "pos", "type")


@contextlib.contextmanager
def comfy(home: Path):
    """The integration tier's ComfyUI on a temp base folder, its tutorial marked done."""
    server = start_comfy(
        Path(os.environ["COMFYUI_PATH"]),
        Path(os.environ["COMFYUI_PYTHON"]),
        home,
        {},
        extra_args=("--base-directory", str(home)),
    )
    try:
        body = json.dumps({"Comfy.TutorialCompleted": True}).encode()
        req = urllib.request.Request(
            server.url + "/settings", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req, timeout=30).close()
        yield server
    finally:
        stop_comfy(server)


def node(argv: list[str], cwd: Path) -> str:
    """Run a browser driver; its stdout, or SystemExit with the end of its stderr."""
    proc = subprocess.run(["node", *argv], capture_output=True, text=True, timeout=600, cwd=cwd)
    if proc.returncode:
        raise SystemExit(f"the browser driver failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def examples(names: list[str]) -> list[Path]:
    """example_workflows/<name>.json for each name, or every example when none is named."""
    found = sorted((REPO / "example_workflows").glob("*.json"))
    unknown = set(names) - {p.stem for p in found}
    if unknown:
        raise SystemExit(f"no example_workflows/<name>.json for: {', '.join(sorted(unknown))}")
    return [p for p in found if not names or p.stem in names]


def resave(url: str, out: Path, files: list[Path]) -> dict:
    """Each example as the frontend saves it, in `out`; the driver's report."""
    stdout = node([str(DRIVER), url, str(out), CHROMIUM, *map(str, files)], DRIVER.parent)
    return json.loads(stdout.strip().splitlines()[-1])


def retake_thumbnails(url: str, out: Path, chosen: list[Path]) -> None:
    """The browser test's thumbnail step alone for `chosen`, written to example_workflows/<name>.jpg
    as that test does."""
    from PIL import Image

    from tests.integration.test_browser import thumbnail

    cfg = {"url": url, "out_dir": str(out), "chromium": CHROMIUM, "mode": "thumbnails"}
    cfg["thumbnails"] = [{"name": p.stem, "path": str(p)} for p in chosen]
    out.mkdir(parents=True, exist_ok=True)
    (out / "drive.json").write_text(json.dumps(cfg), encoding="utf-8")
    node([str(THUMBNAILS_DRIVER), str(out / "drive.json")], THUMBNAILS_DRIVER.parent)
    step = json.loads((out / "result.json").read_text(encoding="utf-8"))["steps"]["thumbnails"]
    if not step.get("ok"):
        raise SystemExit(f"the thumbnail step failed: {step.get('error', '')[:1500]}")
    for p in chosen:
        with Image.open(step[p.stem]["file"]) as img:
            thumbnail(img.convert("RGB")).save(p.with_suffix(".jpg"), quality=88, optimize=True)


def unchanged(before: dict, after: dict) -> list[str]:
    """What the re-save changed that it may not (widget values, positions, links, groups). A node may
    gain widgets after its saved ones: a setting added to the end of a node's group arrives with its
    default, the way the frontend loads any older workflow."""
    problems = [k for k in ("links", "groups") if before.get(k) != after.get(k)]
    old = {n["id"]: n for n in before["nodes"]}
    for n in after["nodes"]:
        was = old.get(n["id"], {})
        problems += [f"node {n['id']} {k}" for k in KEPT if not kept(k, was.get(k), n.get(k))]
    return problems


def kept(key: str, saved, now) -> bool:
    """Whether the re-save kept `key`: equal, or widget values that only grew at the end."""
    if key == "widgets_values" and isinstance(saved, list) and isinstance(now, list):
        return now[: len(saved)] == saved
    return saved == now


def write_resaved(report: dict, out: Path, check: bool) -> list[str] | None:
    """Write each re-saved example that changed (nothing with `check`); the names that changed, or
    None (after saying why) when the frontend changed what only the author may change."""
    stale = []
    for name, errors in report["errors"].items():
        path = REPO / "example_workflows" / name
        before = json.loads(path.read_text(encoding="utf-8"))
        after = json.loads((out / name).read_text(encoding="utf-8"))
        after["id"] = before.get("id", after.get("id"))  # the frontend names each load anew
        problems = unchanged(before, after) + [f"console: {e}" for e in errors]
        if problems:
            print(f"{name}: not saved: {'; '.join(problems)}")
            return None
        text = json.dumps(after, indent=2, ensure_ascii=False) + "\n"
        if text != path.read_text(encoding="utf-8"):
            stale.append(name)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file would change")
    ap.add_argument(
        "--thumbnails", action="store_true", help="then retake the thumbnails (example_workflows/*.jpg)"
    )
    ap.add_argument(
        "names", nargs="*", metavar="NAME", help="only example_workflows/NAME.json (default: all)"
    )
    args = ap.parse_args()
    files = examples(args.names)
    with tempfile.TemporaryDirectory() as tmp, comfy(Path(tmp) / "home") as server:
        stale = write_resaved(resave(server.url, Path(tmp), files), Path(tmp), args.check)
        if stale is None:
            return 1
        verb = "would change" if args.check else "saved from the frontend"
        print(f"{verb}: {', '.join(stale) or 'none'}")
        if args.thumbnails and not args.check:
            retake_thumbnails(server.url, Path(tmp) / "thumbnails-run", files)
            print(f"thumbnails retaken: {', '.join(p.with_suffix('.jpg').name for p in files)}")
        return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
