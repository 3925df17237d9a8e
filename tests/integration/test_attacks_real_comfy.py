"""Attacks against a running real ComfyUI with the pack: the pack's HTTP routes (under / and /api), who
may call the ones that change something (Origin, Content-Type, the settings that decide what code runs,
a library link re-pointed after its save) and LinkModelLibrary through /prompt. Every attack gets a 400/403/404/413 with a sentence, the server
logs no traceback of ours, and nothing outside the allowed root is read, written or moved."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .conftest import start_comfy, stop_comfy
from .test_comfy_loads_pack import run_prompt, tracebacks_about_us

pytestmark = pytest.mark.integration

SECRET = b"\x89PNG\r\n\x1a\nthe secret outside"


def snapshot(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, folder)
            out[rel] = (
                "link:" + os.readlink(p)
                if os.path.islink(p)
                else "dir"
                if os.path.isdir(p)
                else open(p, "rb").read()
            )
    return out


def request(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def attacks(home: Path, outside: Path) -> list[tuple[str, str, bytes | None, tuple[int, ...]]]:
    """(name, route + query, body, allowed statuses)."""
    run = home / "run"

    def sample(p: str) -> str:
        return "/lora_workbench/train/sample?" + urllib.parse.urlencode({"path": p})

    def preview(body: str | bytes) -> bytes:
        return body if isinstance(body, bytes) else body.encode()

    return [
        ("sample outside", sample(str(outside / "secret.png")), None, (403,)),
        ("sample link out", sample(str(run / "link.png")), None, (403,)),
        ("sample dot-dot", sample(str(run / ".." / ".." / outside.name / "secret.png")), None, (403,)),
        ("sample not an image", sample(str(run / "notes.txt")), None, (403,)),
        ("sample fifo", sample(str(run / "fifo.png")), None, (403,)),
        ("sample folder", sample(str(run / "dir.png")), None, (403,)),
        ("sample over-long", sample("x" * 5000 + ".png"), None, (400,)),
        ("sample long name", sample("run/" + "n" * 300 + ".png"), None, (400,)),
        ("sample ~nouser", sample("~nouser-xq/s.png"), None, (400,)),
        ("runs limit=²", "/lora_workbench/train/runs?limit=%C2%B2", None, (400,)),
        ("runs limit=٣", "/lora_workbench/train/runs?limit=%D9%A3", None, (400,)),
        (
            "preview outside",
            "/lora_workbench/dataset/preview",
            preview(json.dumps({"project": str(outside)})),
            (403,),
        ),
        (
            "preview dot-dot",
            "/lora_workbench/dataset/preview",
            preview('{"project": "../../../../etc"}'),
            (403,),
        ),
        (
            "preview over-long",
            "/lora_workbench/dataset/preview",
            preview(json.dumps({"project": "p" * 5000})),
            (400,),
        ),
        (
            "preview 1e400",
            "/lora_workbench/dataset/preview",
            preview('{"project": "proj", "width": 1e400}'),
            (400,),
        ),
        (
            "preview digits",
            "/lora_workbench/dataset/preview",
            preview('{"project": "proj", "epochs": ' + "9" * 5000 + "}"),
            (400,),
        ),
        (
            "preview NaN",
            "/lora_workbench/dataset/preview",
            preview('{"project": "proj", "height": NaN}'),
            (400,),
        ),
        ("preview deep", "/lora_workbench/dataset/preview", preview("[" * 100000 + "]" * 100000), (400,)),
        (
            "preview deep value",
            "/lora_workbench/dataset/preview",
            preview('{"project": ' + "[" * 50000 + "]" * 50000 + "}"),
            (400,),
        ),
        ("preview not utf-8", "/lora_workbench/dataset/preview", preview(b'{"project": "\xff"}'), (400,)),
        (
            "preview 2 MiB",
            "/lora_workbench/dataset/preview",
            preview(json.dumps({"project": "proj", "weights": "x" * (2 << 20)})),
            (413,),
        ),
    ]


def test_attacks_on_the_routes_of_a_real_comfyui_are_refused(comfyui_dir, comfy_python, tmp_path):
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    (outside / "lib" / "loras").mkdir(parents=True)
    run = home / "run"
    run.mkdir(parents=True)
    (run / "notes.txt").write_text("inside, not an image")
    (run / "link.png").symlink_to(outside / "secret.png")
    (run / "dir.png").mkdir()
    os.mkfifo(run / "fifo.png")
    (home / "proj" / "images").mkdir(parents=True)
    before = snapshot(outside)
    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    try:
        results = []
        for prefix in ("", "/api"):
            for name, route, body, allowed in attacks(home, outside):
                status, raw = request(server.url + prefix + route, body, "POST" if body is not None else None)
                assert SECRET not in raw, name
                assert status in allowed, (prefix + name, status, raw[:300])
                if status != 413 or raw:
                    assert json.loads(raw)["error"], name
                results.append((prefix + " " + name, status))
        print("\n" + "\n".join(f"{status}  {name}" for name, status in results))
        ok = server.get_json("/lora_workbench/library/status")
        assert str(Path(os.path.realpath(home))) in ok["roots"]
        assert snapshot(outside) == before
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop_comfy(server)


def link_prompt(library: str, a1111: str) -> dict:
    return {
        "1": {
            "class_type": "LinkModelLibrary",
            "inputs": {
                "library": library,
                "link_comfyui": True,
                "watch": False,
                "init_if_missing": False,
                "dry_run": False,
                "a1111_path": a1111,
                "forge_path": "",
            },
        }
    }


def test_a_shared_library_and_ui_folder_cannot_make_a_real_comfyui_write_outside(
    comfyui_dir, comfy_python, tmp_path
):
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    (outside / "Lora").mkdir(parents=True)
    (outside / "Lora" / "keep.txt").write_text("the user's")
    lib = home / "library"
    for cat in ("loras", "checkpoints", "vae"):
        (lib / cat).mkdir(parents=True)
    (lib / "loras" / "style.safetensors").write_bytes(b"\0" * 16)
    (lib / "loras" / "back").symlink_to(home / "models" / "loras", target_is_directory=True)  # loops back
    a1111 = home / "a1111"
    (a1111 / "models").mkdir(parents=True)
    (a1111 / "models" / "Lora").symlink_to(outside / "Lora", target_is_directory=True)  # escapes the root
    empty = home / "mnt"
    empty.mkdir()
    before = snapshot(outside)
    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    try:
        for _ in range(2):
            text = run_prompt(server, link_prompt(str(lib), str(a1111)))["outputs"]["1"]["text"][0]
        print(f"\nnode report:\n{text}")
        assert "outside the UI folder and the allowed roots; not linked" in text
        assert "not scanned" in text
        assert (home / "models/loras/style.safetensors").is_symlink()
        assert not os.path.lexists(home / "models/loras/back")
        unmounted = run_prompt(server, link_prompt(str(empty), ""))["outputs"]["1"]["text"][0]
        assert "looks unmounted" in unmounted
        assert (home / "models/loras/style.safetensors").is_symlink()  # the empty mount removed nothing
        assert snapshot(outside) == before
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop_comfy(server)


# --------------------------------------------------------------------------- planted run records
MARK = "OUTSIDE-RUN-SECRET"
PLANTED = {
    "losses-number": '{"state": "finished", "losses": 5}',
    "losses-object": '{"state": "finished", "losses": {}}',
    "losses-null": '{"state": "finished", "losses": [null]}',
    "warnings-number": '{"state": "finished", "warnings": 5}',
    "state-list": '{"state": []}',
    "status-texts": '{"state": "finished", "status": {"step": "7", "losses": 5}}',
    "top-level-list": "[1, 2, 3]",
    "nested-deep": "[" * 100_000 + "]" * 100_000,
    "huge-number": '{"state": "finished", "status": {"step": 1e400, "total": ' + "9" * 5000 + "}}",
    "nan": '{"state": "finished", "losses": [[1, NaN]], "status": {"it_per_s": NaN}}',
}


def plant_runs(home: Path, outside: Path) -> dict[str, Path]:
    """A good run in one project, odd records, a FIFO, a sparse 100 MB file and links in a shared one,
    and an outside run full of MARK; the projects in the index the Training tab lists from."""

    def run(project: str, name: str, record: str) -> Path:
        folder = home / project / "output" / name
        (folder / "sample").mkdir(parents=True)
        (folder / "run.json").write_text(record, encoding="utf-8")
        (folder / "train.log").write_text("steps: 100%|##| 2/2\n", encoding="utf-8")
        return folder

    good = '{"state": "finished", "losses": [[1, 0.5], [2, 0.4]], "status": {"step": 2, "total": 2}}'
    runs = {"good": run("anna", "anna-001", good)}
    runs.update({name: run("shared", f"{name}-001", text) for name, text in PLANTED.items()})
    runs["fifo"] = run("shared", "fifo-001", "{}")
    (runs["fifo"] / "run.json").unlink()
    os.mkfifo(runs["fifo"] / "run.json")
    runs["sparse"] = run("shared", "sparse-001", "{}")
    with open(runs["sparse"] / "run.json", "wb") as f:
        f.truncate(100 << 20)
    secret = outside / "x" / "output" / "x-001"
    secret.mkdir(parents=True)
    (secret / "run.json").write_text(json.dumps({"state": MARK, "error": MARK}), encoding="utf-8")
    (secret / "train.log").write_text(MARK + "\n", encoding="utf-8")
    runs["run.json-link"] = run("shared", "link-001", "{}")
    (runs["run.json-link"] / "run.json").unlink()
    (runs["run.json-link"] / "run.json").symlink_to(secret / "run.json")
    runs["passwd-link"] = run("shared", "passwd-001", "{}")
    (runs["passwd-link"] / "run.json").unlink()
    (runs["passwd-link"] / "run.json").symlink_to("/etc/passwd")
    runs["folder-link"] = home / "shared" / "output" / "folder-001"
    runs["folder-link"].symlink_to(secret, target_is_directory=True)
    index = {"projects": [str(home / "shared"), str(home / "anna"), str(outside / "x")]}
    (home / "known-projects.json").write_text(json.dumps(index), encoding="utf-8")
    return runs


def test_planted_run_records_never_break_the_training_tab_of_a_real_comfyui(
    comfyui_dir, comfy_python, tmp_path
):
    home, outside = tmp_path / "home", tmp_path / "outside"
    runs = plant_runs(home, outside)
    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    try:
        status, raw = request(server.url + "/lora_workbench/train/runs?limit=200")
        listed = [r["run_id"] for r in json.loads(raw)["runs"]]
        print(f"\nrun list: {status}, {len(raw)} bytes: {listed}")
        assert status == 200 and "anna-001" in listed and MARK.encode() not in raw
        assert "folder-001" not in listed and "link-001" not in listed and "passwd-001" not in listed
        results = []
        for name, folder in runs.items():
            status, raw = request(
                server.url + "/lora_workbench/train/run?" + urllib.parse.urlencode({"dir": str(folder)})
            )
            results.append(f"{status}  {name}: {raw[:150].decode('utf-8', 'replace')}")
            assert status in (200, 400, 403, 404) and MARK.encode() not in raw and b"root:" not in raw, (
                results[-1]
            )
            body = json.loads(raw)
            assert body["error"] if status != 200 else isinstance(body["losses"], list), results[-1]
        print("\n".join(results))
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop_comfy(server)


def test_a_run_folder_swapped_for_a_link_never_makes_a_real_comfyui_serve_outside_data(
    comfyui_dir, comfy_python, tmp_path
):
    import threading

    home, outside = tmp_path / "home", tmp_path / "outside"
    runs = plant_runs(home, outside)
    good, secret = runs["good"], outside / "x" / "output" / "x-001"
    aside, stop = good.with_name("anna-001.aside"), threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(good, aside)
            os.symlink(secret, good, target_is_directory=True)
            stop.wait(0.001)  # the link lasts a moment, as the real folder does below
            os.unlink(good)
            os.rename(aside, good)
            stop.wait(0.001)

    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    swapper = threading.Thread(target=swap, daemon=True)
    counts: dict[int, int] = {}
    try:
        swapper.start()
        for i in range(300):
            route = (
                "/lora_workbench/train/runs"
                if i % 3 == 0
                else "/lora_workbench/train/run?" + urllib.parse.urlencode({"dir": str(good)})
            )
            status, raw = request(server.url + route)
            counts[status] = counts.get(status, 0) + 1
            assert MARK.encode() not in raw, (i, status, raw[:300])
        print(f"\n300 requests while the run folder was swapped: {counts}")
        assert set(counts) <= {200, 403, 404}
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop.set()
        swapper.join()
        stop_comfy(server)


# --------------------------------------------------------------------------- who can reach the routes
def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def planted_trainer(folder: Path) -> tuple[dict[str, str], Path]:
    """What ComfyUI's own /upload/image can put into input/: a train_network.py and a 'python'."""
    marker = folder / "RAN"
    (folder / "sd-scripts").mkdir(parents=True)
    (folder / "sd-scripts" / "train_network.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (folder / "presets" / "lora").mkdir(parents=True)
    py = folder / "venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f"#!/bin/sh\ntouch {marker}\necho 2.4.1 False 3.11.9\n")
    py.chmod(0o755)
    return {"kohya_ss_path": str(folder), "kohya_python": str(py), "kohya_ss_gui_path": str(folder)}, marker


def test_only_comfyuis_own_page_may_change_settings_and_never_what_code_runs(
    comfyui_dir, comfy_python, tmp_path
):
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    values, marker = planted_trainer(home / "input" / "uploaded")
    lib = home / "lora-projects" / "lib"
    lib.mkdir(parents=True)
    settings_file = home / "settings.json"
    # Only ComfyUI's own folders are roots here: nothing from the environment.
    env = {"LORA_WORKBENCH_ROOTS": "", "COMFYUI_PATH": "", "SD_MODELS_PATH": "", "KOHYA_SS_PATH": ""}
    env.update({"KOHYA_PYTHON": "", "KOHYA_SS_GUI_PATH": ""})
    server = start_comfy(comfyui_dir, comfy_python, home, env, extra_args=("--base-directory", str(home)))
    try:
        own = server.url.split("//", 1)[1]
        results = []

        def post(name: str, route: str, payload: dict | bytes, headers: dict, allowed: tuple[int, ...]):
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            for prefix in ("", "/api"):
                status, raw = send(server.url + prefix + route, body, headers)
                assert status in allowed, (prefix + " " + name, status, raw[:300])
                results.append((f"{prefix} {name}", status, raw[:160].decode("utf-8", "replace")))
            return json.loads(raw) if raw else {}

        lib_value = {"values": {"library": str(lib)}}
        json_from = {"Content-Type": "application/json"}
        post("Origin null", "/lora_workbench/settings", lib_value, {**json_from, "Origin": "null"}, (403,))
        post(
            "foreign Origin",
            "/lora_workbench/settings",
            lib_value,
            {**json_from, "Origin": "http://evil.example"},
            (403,),
        )
        post(
            "cancel, Origin null", "/lora_workbench/train/cancel", {}, {**json_from, "Origin": "null"}, (403,)
        )
        post("text/plain", "/lora_workbench/settings", lib_value, {"Content-Type": "text/plain"}, (415,))
        post(
            "a page on this host's port 80",
            "/lora_workbench/settings",
            lib_value,
            {**json_from, "Origin": "http://127.0.0.1"},
            (403,),
        )
        port = own.rsplit(":", 1)[1]
        rebinding = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        post("DNS rebinding page", "/lora_workbench/settings", lib_value, {**json_from, **rebinding}, (403,))
        for route in ("/lora_workbench/settings", "/lora_workbench/library/status"):
            req = urllib.request.Request(server.url + route, headers={"Host": rebinding["Host"]})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    status, raw = r.status, r.read()
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
            assert status == 403 and b"evil.example" in raw, (route, status, raw[:200])
            results.append((f"GET {route} from a DNS rebinding page", status, raw[:160].decode()))
        post(
            "form post",
            "/lora_workbench/train/cancel",
            b"a=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            (415,),
        )
        assert not settings_file.exists()
        same_origin = {**json_from, "Origin": f"http://{own}"}
        for key, value in values.items():
            got = post(
                f"same-origin {key}",
                "/lora_workbench/settings",
                {"values": {key: value}},
                same_origin,
                (400,),
            )
            assert f"lora-workbench settings --set {key}=" in got["error"]
        assert not marker.exists() and not settings_file.exists()

        # The library: saved resolved from our own page, then re-pointed out of the roots.
        post("same-origin library", "/lora_workbench/settings", lib_value, same_origin, (200,))
        assert json.loads(settings_file.read_text())["library"] == os.path.realpath(lib)
        roots = server.get_json("/lora_workbench/library/status")["roots"]
        for closed in (home, home / "custom_nodes", home / "user"):
            assert os.path.realpath(closed) not in roots, (closed, roots)
        for opened in ("models", "input", "output", "lora-projects"):
            assert os.path.realpath(home / opened) in roots, (opened, roots)
        lib.rename(lib.with_name("lib-saved"))
        lib.symlink_to(outside, target_is_directory=True)
        sample = "/lora_workbench/train/sample?" + urllib.parse.urlencode(
            {"path": str(outside / "secret.png")}
        )
        status, raw = request(server.url + sample)
        assert status == 403 and SECRET not in raw, (status, raw[:200])
        assert os.path.realpath(outside) not in server.get_json("/lora_workbench/library/status")["roots"]
        assert "not an allowed root" in server.log()

        # A planted record: a settings file that names the library through a link out of the roots.
        settings_file.write_text(json.dumps({"library": str(home / "input" / "lib")}))
        (home / "input" / "lib").symlink_to(outside, target_is_directory=True)
        status, raw = request(server.url + sample)
        assert status == 403 and SECRET not in raw, (status, raw[:200])

        # A ComfyUI folder saved from our page inside the roots, one of whose roots is then planted as a link.
        settings_file.unlink()
        shared = home / "lora-projects" / "shared-comfy"
        shared.mkdir()
        post(
            "same-origin comfyui_path",
            "/lora_workbench/settings",
            {"values": {"comfyui_path": str(shared)}},
            same_origin,
            (200,),
        )
        (shared / "input").symlink_to(outside, target_is_directory=True)
        status, raw = request(server.url + sample)
        assert status == 403 and SECRET not in raw, (status, raw[:200])
        assert os.path.realpath(outside) not in server.get_json("/lora_workbench/library/status")["roots"]
        print("\n" + "\n".join(f"{status}  {name}: {text}" for name, status, text in results))
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop_comfy(server)
