"""Save every example workflow from the current frontend (graph.serialize() in a real ComfyUI), so the
JSON carries every widget, input and output of each node as the frontend saves them today.

    . .integration/env && python scripts/resave_examples.py [--check]

Starts the integration tier's ComfyUI (CPU, a temp base folder) with this checkout as a custom node,
loads each example_workflows/*.json in Chromium (tests/integration/browser/, `npm install` there), and
writes what the frontend saved back, after checking that widget values, positions, links and groups
are unchanged (a change there is the author's to make, not the re-save's). --check writes nothing
and exits 1 when a file would change. Thumbnails are retaken by the browser test
(LORA_WORKBENCH_UPDATE_THUMBNAILS=1).
"""

from __future__ import annotations

import argparse
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
KEPT = ("widgets_values", "pos", "type")


def resave(out: Path) -> dict:
    """Each example as the frontend saves it, in `out`; the driver's report."""
    home = out / "home"
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
        chromium = os.environ.get("LORA_WORKBENCH_CHROMIUM", "/usr/bin/chromium")
        files = [str(p) for p in sorted((REPO / "example_workflows").glob("*.json"))]
        argv = ["node", str(DRIVER), server.url, str(out), chromium, *files]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=DRIVER.parent)
        if proc.returncode:
            raise SystemExit(f"the browser driver failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        stop_comfy(server)


def unchanged(before: dict, after: dict) -> list[str]:
    """What the re-save changed that it may not (widget values, positions, links, groups)."""
    problems = [k for k in ("links", "groups") if before.get(k) != after.get(k)]
    old = {n["id"]: n for n in before["nodes"]}
    for n in after["nodes"]:
        problems += [f"node {n['id']} {k}" for k in KEPT if old.get(n["id"], {}).get(k) != n.get(k)]
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file would change")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = resave(Path(tmp))
        stale = []
        for name, errors in report["errors"].items():
            path = REPO / "example_workflows" / name
            before = json.loads(path.read_text(encoding="utf-8"))
            after = json.loads((Path(tmp) / name).read_text(encoding="utf-8"))
            after["id"] = before.get("id", after.get("id"))  # the frontend names each load anew
            problems = unchanged(before, after) + [f"console: {e}" for e in errors]
            if problems:
                print(f"{name}: not saved: {'; '.join(problems)}")
                return 1
            text = json.dumps(after, indent=2, ensure_ascii=False) + "\n"
            if text != path.read_text(encoding="utf-8"):
                stale.append(name)
                if not args.check:
                    path.write_text(text, encoding="utf-8")
        verb = "would change" if args.check else "saved from the frontend"
        print(f"{verb}: {', '.join(stale) or 'none'}")
        return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
