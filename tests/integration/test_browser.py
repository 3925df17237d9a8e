"""The web panels in a real browser: Debian's Chromium (headless, driven by playwright-core) on a real
ComfyUI with the pack. Opens every node's help page from the selection toolbox; saves the tokenizer
cache in ComfyUI's settings dialog (after a refused bad path), sees the sd-scripts paths shown
read-only with the command that set the Python from a shell, and sees the next queue use both
(ComfyUI gets neither from its environment) and the CLI read them; edits a subset weight in the weights
editor and sees the repeats and the node's weights value change; builds the short KohyaLoRATrain with
two chained option nodes, queues a short real training (CPU, random SD1.5, 64x64, 1 epoch) and sees
the loss chart get points, the progress bar's preview images and the run in the Training tab; runs the
library node and sees its status; loads a workflow of the first trainer layout and sees it migrated
onto option nodes; queues one run through the queue API with no training node on the canvas and
watches it finish in the Training tab, cancels another from the tab, reloads the page and finds all
runs again. Screenshots of each. A second test runs the caption editor alone (drive.mjs mode "captions"):
opened from the dataset node, one caption edited, a tag added in bulk, saved, the page reloaded and the
editor opened from a run in the Training tab, the captions read back from disk; then a caption changed
on disk meanwhile is refused (409) with the edit kept.

Needs: COMFYUI_PATH (+ KOHYA_SS_PATH for the training), node, Chromium at /usr/bin/chromium (or
$LORA_WORKBENCH_CHROMIUM) and `npm install` in tests/integration/browser/. Skips with the reason when
one is missing. Screenshots go to $LORA_WORKBENCH_SCREENSHOTS when set, else a temp folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import toml

from .conftest import REPO, start_comfy, stop_comfy, trainers_alive

pytestmark = pytest.mark.integration

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CKPT = "random_sd15.safetensors"
SUBSETS = {"Alice": (2, 4), "Bob": (1, 2)}  # name -> (folder repeats prefix, image count)
TRAIN_TIMEOUT_S = 420
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
HELP_NODES = ("DatasetSubsetWeights", "KohyaLoRATrain", "LoadTrainedLoRA", "LinkModelLibrary")
OPTION_NODES = (
    *(
        f"Kohya{g}Options"
        for g in ("Network", "Optimizer", "Caption", "Sampling", "Saving", "Precision", "Launch", "Family")
    ),
    "KohyaModelFiles",
    "KohyaGuiConfigOptions",
)

# A stand-in dataset node for when DatasetSubsetWeights has not landed: the LORA_DATASET from the
# project's dataset.toml, read by the core.
HELPER_NODE = """
import sys
sys.path.insert(0, {repo!r})
from lora_workbench.dataset.dataset_toml import dataset_from_toml


class WorkbenchTestDataset:
    CATEGORY = "testing"
    FUNCTION = "run"
    RETURN_TYPES = ("LORA_DATASET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"project": ("STRING", {{"default": ""}})}}}}

    def run(self, project):
        return (dataset_from_toml(project + "/dataset.toml", project),)


NODE_CLASS_MAPPINGS = {{"WorkbenchTestDataset": WorkbenchTestDataset}}
"""


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the browser driver is a node script)")
    chromium = os.environ.get("LORA_WORKBENCH_CHROMIUM", "/usr/bin/chromium")
    if not (Path(chromium).is_file() and os.access(chromium, os.X_OK)):
        pytest.skip(f"no Chromium at {chromium}: apt-get install chromium, or set LORA_WORKBENCH_CHROMIUM")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip(f"playwright-core is not installed: run `npm install` in {BROWSER_DIR}")
    return node, chromium


def make_images(folder: Path, count: int, caption: str) -> None:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    for i in range(count):
        img = Image.new("RGB", (64, 64), (40 * i % 255, 120, 200 - 30 * i))
        ImageDraw.Draw(img).ellipse((8 + 4 * i, 8, 48, 48 + 2 * i), fill=(250, 240 - 40 * i, 30))
        img.save(folder / f"{caption}_{i}.png")
        (folder / f"{caption}_{i}.txt").write_text(f"{caption}, a drawing", encoding="utf-8")


@pytest.fixture(scope="module")
def web_server(
    comfyui_dir, comfy_python, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, tmp_path_factory
):
    """A ComfyUI whose base directory (models, user settings) is a temp folder, so the library node and
    the browser's settings never touch the checkout's own folders."""
    home = tmp_path_factory.mktemp("web-home")
    project = home / "projects" / "demo"
    for name, (repeats, count) in SUBSETS.items():
        make_images(project / "images" / f"{repeats}_{name}", count, name.lower())
    library = home / "library"
    for cat in ("loras", "checkpoints", "vae"):
        (library / cat).mkdir(parents=True)
    (library / "loras" / "style.safetensors").write_bytes(b"not a real model")
    (library / "vae" / "tiny_vae.safetensors").write_bytes(b"not a real model")
    (home / "models" / "vae").mkdir(parents=True)
    (home / "models" / "vae" / "tiny_vae.safetensors").write_bytes(b"a real file: a collision")

    dataset_node = "DatasetSubsetWeights"
    if not (REPO / "nodes" / "dataset_subset_weights.py").is_file():
        dataset_node = "WorkbenchTestDataset"
        (home / "custom_nodes").mkdir(parents=True, exist_ok=True)
        (home / "custom_nodes" / "workbench_test_dataset.py").write_text(HELPER_NODE.format(repo=str(REPO)))
        subsets = "".join(
            f'\n  [[datasets.subsets]]\n  image_dir = "{(project / "images" / f"{r}_{n}").as_posix()}"\n'
            f'  class_tokens = "{n.lower()}"\n  num_repeats = {r}\n'
            for n, (r, _c) in SUBSETS.items()
        )
        (project / "dataset.toml").write_text(
            '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n[[datasets]]\n'
            f"resolution = [64, 64]\nbatch_size = 1\n{subsets}",
            encoding="utf-8",
        )

    # The sd-scripts Python is set from a shell (the dialog shows it read-only) and the tokenizer cache
    # from the settings dialog (test step), neither from the environment: training works only if both
    # reach the next queue. The cache must lie inside the roots to be saved from the browser.
    set_from_a_shell(home / "settings.json", {"kohya_python": str(kohya_python)})
    env = {
        "KOHYA_SS_PATH": str(kohya_dir),
        "KOHYA_PYTHON": "",
        "LORA_WORKBENCH_TOKENIZER_CACHE": "",
        "LORA_WORKBENCH_ROOTS": os.pathsep.join([str(home), str(tokenizer_cache)]),
    }
    server = start_comfy(
        comfyui_dir,
        comfy_python,
        home,
        env,
        checkpoint=test_checkpoint,
        extra_args=("--base-directory", str(home)),
    )
    try:
        # A fresh user folder opens the template browser on top of the graph: mark the tour done.
        req = urllib.request.Request(
            server.url + "/settings",
            method="POST",
            data=json.dumps({"Comfy.TutorialCompleted": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).close()
        yield (
            server,
            project,
            library,
            dataset_node,
            {"tokenizer_cache_dir": str(tokenizer_cache)},
        )
    finally:
        stop_comfy(server)


def our_errors(messages: list[str]) -> list[str]:
    return [m for m in messages if "lora-workbench" in m or "lora_workbench" in m]


HELP_LOCALE = re.compile(r"/docs/[A-Za-z0-9_]+/[a-z]{2}(-[A-Za-z]+)?\.md$")  # tried before docs/<Node>.md


def unexpected_failures(result: dict) -> list[dict]:
    """Failed answers from our routes and files, less the help page's locale probe and the answers
    the driver provoked on purpose (a bad path in the settings dialog)."""
    expected = result.get("expected_failures", [])
    return [
        r
        for r in result["failed_responses"]
        if ("lora_workbench" in r["url"] or "lora-workbench" in r["url"])
        and not HELP_LOCALE.search(r["url"].split("?")[0])
        and not any(e in r["url"] and r["status"] == 400 for e in expected)
    ]


def test_panels_work_in_a_real_browser(browser, web_server, kohya_python, tmp_path):
    node, chromium = browser
    server, project, library, dataset_node, dialog_settings = web_server
    out = Path(os.environ.get("LORA_WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
    workflow = REPO / "example_workflows" / "train_a_lora_from_a_folder_of_photos.json"
    cfg = {
        "url": server.url,
        "out_dir": str(out),
        "chromium": chromium,
        "project": str(project),
        "library": str(library),
        "ckpt": CKPT,
        "subsets": list(SUBSETS),
        "train": True,
        "train_timeout_s": TRAIN_TIMEOUT_S,
        "max_train_steps": 6,
        "samples": True,
        "dataset_node": dataset_node,
        "help_nodes": [*HELP_NODES, *OPTION_NODES],
        "settings": dialog_settings,
        "read_only_settings": list(SHELL_ONLY),
        "api_runs": True,
        "thumbnails": [{"name": p.stem, "path": str(p)} for p in EXAMPLES],
        "workflow": str(workflow) if workflow.is_file() and dataset_node == "DatasetSubsetWeights" else None,
        "legacy_workflow": str(REPO / "tests" / "fixtures" / "workflows" / "kohya_train_v1.json"),
    }
    cfg_path = tmp_path / "drive.json"
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    run = subprocess.run(
        [node, str(BROWSER_DIR / "drive.mjs"), str(cfg_path)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=3 * TRAIN_TIMEOUT_S + 600,
    )
    print(run.stdout[-4000:], run.stderr[-4000:])
    result_file = out / "result.json"
    assert result_file.is_file(), f"the driver wrote no result (rc {run.returncode}):\n{run.stderr[-3000:]}"
    result = json.loads(result_file.read_text(encoding="utf-8"))
    steps = result["steps"]
    failed = {k: v["error"][:1500] for k, v in steps.items() if not v.get("ok")}
    assert not failed, f"{failed}\n--- ComfyUI log ---\n{server.log()[-3000:]}"
    assert run.returncode == 0, run.stderr[-3000:]

    assert not our_errors(result["page_errors"]), result["page_errors"]
    assert not our_errors(result["console_errors"]), result["console_errors"]
    bad = unexpected_failures(result)
    assert not bad, bad
    ours = [r for r in result["external_requests"] if r["type"] in ("script", "stylesheet", "font", "image")]
    assert not ours, f"something loaded from the internet: {ours}"

    if dataset_node == "DatasetSubsetWeights":
        we = steps["weights_editor"]
        first, second = list(SUBSETS)
        assert we["after"][first] != we["before"][first], we
        assert int(we["after"][first]) > int(we["after"][second]), we
        assert f"{first}: 3" in we["weights"], we["weights"]
        assert we["weights"] in we["widgets_values"], "the weights text is not in the saved workflow values"
        # moving a weight switches repeats to weights (issue 13); the example (saved without repeats,
        # weights empty) loads as folders
        assert (we["repeats_before"], we["repeats_after"]) == ("folders", "weights"), we
        assert "weights" in we["widgets_values"], we["widgets_values"]
        if cfg["workflow"]:
            assert steps["graph"]["repeats_after_load"] == "folders", steps["graph"]

    tr = steps["train"]
    assert tr["final"]["state"] == "finished", tr
    assert tr["final"]["points"] >= 1, tr
    assert tr["route_state"] == "finished"
    assert max(tr["points_seen"]) >= 1 and tr["points_seen"] == sorted(tr["points_seen"]), tr["points_seen"]

    short = steps["short_node"]
    print("short node:", json.dumps(short)[:1500])
    assert 12 <= len(short["trainer_widgets"]) <= 17 and short["trainer_values"] == len(
        short["trainer_widgets"]
    )
    assert short["trainer_options_linked"], short
    kinds = [n["type"] for n in short["option_nodes"]]
    assert sorted(kinds) == ["KohyaOptimizerOptions", "KohyaSamplingOptions"], kinds
    assert all(n["feeds"] == 1 for n in short["option_nodes"]), short

    mig = steps["migration"]
    print("migrated first layout:", json.dumps(mig)[:2000])
    assert mig["trainer"] == {"epochs": 2, "network_dim": 32, "values": 15, "options_linked": True}, mig
    nodes = mig["option_nodes"]
    assert sorted(nodes) == ["KohyaLaunchOptions", "KohyaOptimizerOptions", "KohyaSamplingOptions"], nodes
    assert (
        nodes["KohyaOptimizerOptions"]["batch_size"] == 2
        and nodes["KohyaOptimizerOptions"]["optimizer"] == "Lion"
    )
    assert nodes["KohyaLaunchOptions"]["device"] == "cpu" and nodes["KohyaLaunchOptions"]["cpu_threads"] == 4
    assert nodes["KohyaSamplingOptions"]["show_samples"] is True
    queued = {e["class_type"]: e["inputs"] for e in mig["prompt"].values()}
    assert queued["KohyaLoRATrain"]["options"][0] in mig["prompt"], queued
    assert queued["KohyaSamplingOptions"]["sample_prompts"] == "a photo of subject"

    check_help_pages(steps)
    check_settings_dialog(steps["settings_dialog"], dialog_settings, str(kohya_python))
    check_settings_reached_the_run(
        Path(tr["run_dir"]), {**dialog_settings, "kohya_python": str(kohya_python)}
    )
    check_the_cli_reads_the_dialog(server.home / "settings.json", dialog_settings)
    check_preview_and_tab(tr)
    check_api_runs(steps, str(project))
    check_thumbnails(steps["thumbnails"], out)

    lib = steps["library_panel"]
    assert lib["watching"] == "yes", lib
    assert "created" in lib["text"] and "collisions 1" in lib["text"], lib["text"]

    shots = ["train_panel_done", "library_status", "overview", "short_node_with_options"]
    shots += ["migrated_first_layout", "settings_dialog_error", "settings_dialog_saved"]
    shots += ["train_node_preview", "training_tab_running", "training_tab_done", "training_tab_api_running"]
    shots += ["training_tab_api_done", "training_tab_cancelled", "training_tab_after_reload"]
    shots += [f"help_{n}" for n in (*HELP_NODES, *OPTION_NODES)]
    for name in shots:
        assert (out / f"{name}.png").is_file(), name
    if dataset_node != "DatasetSubsetWeights":
        pytest.skip(
            "DatasetSubsetWeights is not in the pack yet: the weights editor was not exercised "
            "(training ran through a stand-in dataset node)"
        )


def check_help_pages(steps: dict) -> None:
    names = {"DatasetSubsetWeights": "Dataset Subset Weights", "KohyaLoRATrain": "Kohya LoRA Train"}
    for node in (*HELP_NODES, *OPTION_NODES):
        page = steps[f"help_{node}"]
        assert not page["fallback"], f"{node}: the frontend showed its fallback, not our page"
        assert {"Inputs", "Outputs", "Typical chain"} <= set(page["h2"]), (node, page["h2"])
        if node in (
            *HELP_NODES,
            "KohyaOptimizerOptions",
            "KohyaSamplingOptions",
            "KohyaFamilyOptions",
            "KohyaModelFiles",
            "KohyaGuiConfigOptions",
        ):
            assert "FAQ" in page["h2"], (node, page["h2"])
        assert page["items"] >= 4, (node, page["items"])
        if node in names:
            assert page["h1"] == names[node], page["h1"]
    assert "Repeats, epochs, steps" in steps["help_DatasetSubsetWeights"]["text"]
    assert "network_alpha" in steps["help_KohyaLoRATrain"]["text"]
    # the help names what the setting becomes in either trainer's config ("trainer:"), rendered, no `
    assert "trainer: `optimizer_type`" not in steps["help_KohyaOptimizerOptions"]["text"]
    assert "trainer: optimizer_type" in steps["help_KohyaOptimizerOptions"]["text"]
    assert "FLUX.1: clip_l, t5xxl and ae" in steps["help_KohyaModelFiles"]["text"]


SHELL_ONLY = ("kohya_ss_path", "kohya_python", "kohya_ss_gui_path", "musubi_tuner_path", "musubi_python")


def set_from_a_shell(settings_file: Path, values: dict) -> None:
    """`lora-workbench settings --set KEY=VALUE` (the only way to set what decides the code that runs)."""
    env = {**os.environ, "LORA_WORKBENCH_SETTINGS": str(settings_file)}
    cli = [sys.executable, "-c", "import sys; from lora_workbench.cli import main; sys.exit(main())"]
    sets = [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    done = subprocess.run(
        [*cli, "settings", *sets], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "torch" in done.stdout, done.stdout + done.stderr[-2000:]


def check_settings_dialog(step: dict, wanted: dict, python: str) -> None:
    assert "outside the allowed roots" in step["refused"], step["refused"]
    for key, value in wanted.items():
        assert step["saved"][key].startswith("saved"), step["saved"]
        assert step["server"][key] == value, step["server"]
    for key, row in step["readOnly"].items():
        assert row["status"] == "read-only" and row["buttons"] == 0 and not row["editable"], (key, row)
        assert f"lora-workbench settings --set {key}=" in row["text"], (key, row)
    assert step["readOnly"]["kohya_python"]["value"] == python


def check_settings_reached_the_run(run_dir: Path, wanted: dict) -> None:
    """The next queue used what the dialog saved: ComfyUI had neither value in its environment."""
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["argv"][0] == wanted["kohya_python"], record["argv"][:3]
    config = toml.loads((run_dir / "config.toml").read_text(encoding="utf-8"))  # the parser sd-scripts uses
    in_config = {k: v for k, v in config.items() if not isinstance(v, dict)}
    in_config.update({k: v for part in config.values() if isinstance(part, dict) for k, v in part.items()})
    assert in_config.get("tokenizer_cache_dir") == wanted["tokenizer_cache_dir"], config


def check_the_cli_reads_the_dialog(settings_file: Path, wanted: dict) -> None:
    """`lora-workbench settings --json` on the file the dialog wrote shows the dialog's values, taken
    from the file (the environment of this test sets neither)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KOHYA_PYTHON", "LORA_WORKBENCH_TOKENIZER_CACHE")}
    env["LORA_WORKBENCH_SETTINGS"] = str(settings_file)
    cli = [sys.executable, "-c", "import sys; from lora_workbench.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*cli, "settings", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shown = {item["key"]: item for item in json.loads(done.stdout)["settings"]}
    print("the CLI reads the dialog's settings:", {k: shown[k]["effective"] for k in wanted})
    for key, value in wanted.items():
        assert shown[key]["value"] == value and shown[key]["effective"] == value, shown[key]


def check_preview_and_tab(tr: dict) -> None:
    previews = tr["previews"]
    assert previews, "no preview image reached the browser"
    assert all(p["node"] == tr["train_node_id"] and p["type"] == "image/png" for p in previews), previews
    assert len(previews) <= 40, f"{len(previews)} previews: one per step would flood the websocket"
    running = tr["tab_running"]
    assert running and running["state"] == "running" and running["points"] >= 1 and running["cancel_enabled"]
    done = tr["tab_done"]
    assert (
        done["state"] == "finished"
        and {"lora", "loss", "log"} <= set(done["files"])
        and done["log_lines"] > 0
    )


def check_api_runs(steps: dict, marker: str) -> None:
    api = steps["api_run"]
    assert api["nodes_on_canvas"] == 0
    assert api["running"]["points"] >= 1 and api["done"]["state"] == "finished", api
    assert api["done"]["log_lines"] > 0 and {"lora", "loss", "log"} <= set(api["done"]["files"])
    cancel = steps["api_run_cancel"]
    assert cancel["after"]["state"] == "cancelled", cancel
    assert cancel["seconds"] < 30, cancel["seconds"]
    assert not trainers_alive(marker), "a trainer survived the cancel from the Training tab"
    reload = steps["reload"]
    states = sorted(r["state"] for r in reload["runs"])
    assert states.count("finished") >= 2 and "cancelled" in states, states


def check_thumbnails(step: dict, out: Path) -> None:
    """A screenshot of every example workflow in the real frontend; with
    LORA_WORKBENCH_UPDATE_THUMBNAILS=1 they replace the committed example_workflows/<name>.jpg
    (800x450 as the template browser shows them, the graph centred on the canvas's own colour)."""
    from PIL import Image

    for wf in EXAMPLES:
        made = step[wf.stem]
        ours = [t for t in made["nodes"] if t in (*HELP_NODES, *OPTION_NODES)]
        assert ours, f"{wf.name}: no node of the pack on the canvas ({made['nodes']})"
        with Image.open(made["file"]) as img:
            assert img.format == "JPEG" and img.width >= 300 and img.height >= 150, img.size
            if os.environ.get("LORA_WORKBENCH_UPDATE_THUMBNAILS") == "1":
                thumbnail(img.convert("RGB")).save(wf.with_suffix(".jpg"), quality=88, optimize=True)


def thumbnail(img, size: tuple[int, int] = (800, 450)):
    """`img` scaled to fit `size`, centred on its own corner colour (the canvas background)."""
    from PIL import Image

    scale = min(size[0] / img.width, size[1] / img.height)
    fitted = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, img.getpixel((1, 1)))
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


def drive(node: str, cfg: dict, tmp_path: Path, timeout: int) -> dict:
    """Run drive.mjs on `cfg` (its mode's scenario alone) and return the result.json it wrote."""
    cfg_path = tmp_path / "drive.json"
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    run = subprocess.run(
        [node, str(BROWSER_DIR / "drive.mjs"), str(cfg_path)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    return json.loads((Path(cfg["out_dir"]) / "result.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the caption editor alone
CAPTION_SUBSET = "images/3_Alice"


@pytest.fixture(scope="module")
def caption_server(comfyui_dir, comfy_python, tmp_path_factory):
    """A ComfyUI with a project of two subsets (one image without a caption, one caption with a second
    line) and a finished run of that project, so the Training tab can open its captions. No training."""
    home = tmp_path_factory.mktemp("captions-home")
    project = home / "projects" / "captions"
    alice = project / "images" / "3_Alice"
    make_images(alice, 4, "alice")
    (alice / "alice_3.txt").unlink()  # an image without a caption
    (alice / "alice_1.txt").write_text("alice, a drawing\nnot trained, kept\n", encoding="utf-8")
    make_images(project / "images" / "1_Bob", 2, "bob")
    run = project / "output" / "captions-001"
    run.mkdir(parents=True)
    record = {"state": "finished", "started_at": "2026-01-01T12:00:00+0000", "losses": [[1, 0.5]]}
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    (run / "train.log").write_text("steps: 100%\n", encoding="utf-8")
    (home / "known-projects.json").write_text(json.dumps({"projects": [str(project)]}), encoding="utf-8")
    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    try:
        req = urllib.request.Request(
            server.url + "/settings",
            method="POST",
            data=json.dumps({"Comfy.TutorialCompleted": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).close()
        yield server, project
    finally:
        stop_comfy(server)


def test_the_caption_editor_edits_bulk_adds_saves_and_reloads_in_a_real_browser(
    browser, caption_server, tmp_path
):
    node, chromium = browser
    server, project = caption_server
    alice = project / "images" / "3_Alice"
    out = Path(os.environ.get("LORA_WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
    cfg = {
        "url": server.url,
        "out_dir": str(out),
        "chromium": chromium,
        "mode": "captions",
        "project": str(project),
        "captions": {
            "subset": CAPTION_SUBSET,
            "image": "alice_0.png",
            "caption": "alice, red scarf",
            "tag": "smiling",
            "conflict_image": "alice_2.png",
            "conflict_file": str(alice / "alice_2.txt"),
        },
    }
    result = drive(node, cfg, tmp_path, timeout=600)
    steps = result["steps"]
    failed = {k: v["error"][:1500] for k, v in steps.items() if not v.get("ok")}
    assert not failed, f"{failed}\n--- ComfyUI log ---\n{server.log()[-3000:]}"
    assert not our_errors(result["page_errors"]) and not our_errors(result["console_errors"]), result
    provoked = [
        r for r in result["failed_responses"] if r["url"].endswith("/captions/save") and r["status"] == 409
    ]
    assert len(provoked) == 1, provoked  # the conflict the driver made, and nothing else
    bad = [r for r in unexpected_failures(result) if r not in provoked]
    assert not bad, bad

    opened = {c["image"]: c for c in steps["captions_open"]["state"]["cards"]}
    print("caption editor opened:", json.dumps(steps["captions_open"]["state"])[:1500])
    assert sorted(steps["captions_open"]["subsets"]) == ["images/1_Bob", CAPTION_SUBSET]
    assert opened["alice_3.png"]["missing"] and not opened["alice_0.png"]["missing"]
    assert all(c["thumb"] > 0 for c in opened.values()), "a thumbnail did not load"
    assert "a drawing (3)" in steps["captions_open"]["state"]["tags"]

    edited = {c["image"]: c for c in steps["captions_edit"]["state"]["cards"]}
    assert edited["alice_0.png"]["dirty"] and steps["captions_edit"]["state"]["dirty"] == 1
    bulk = {c["image"]: c["text"] for c in steps["captions_bulk_add"]["state"]["cards"]}
    assert (
        bulk["alice_0.png"] == "alice, red scarf, smiling"
        and bulk["alice_2.png"] == "alice, a drawing, smiling"
    )
    assert bulk["alice_3.png"] == "", "an image without a caption got one from a bulk action"
    assert "smiling (3)" in steps["captions_bulk_add"]["state"]["tags"]
    assert steps["captions_save"]["state"]["dirty"] == 0

    reloaded = {c["image"]: c["text"] for c in steps["captions_reload"]["state"]["cards"]}
    print("after the page reload:", reloaded)
    assert reloaded == {
        "alice_0.png": "alice, red scarf, smiling",
        "alice_1.png": "alice, a drawing, smiling",
        "alice_2.png": "alice, a drawing, smiling",
        "alice_3.png": "",
    }
    assert (alice / "alice_0.txt").read_text(encoding="utf-8") == "alice, red scarf, smiling"
    assert (alice / "alice_1.txt").read_text(
        encoding="utf-8"
    ) == "alice, a drawing, smiling\nnot trained, kept\n"
    assert not (alice / "alice_3.txt").exists()
    assert not [p.name for p in alice.iterdir() if p.name.startswith(".")], "a temporary file was left"

    conflict = steps["captions_conflict"]
    assert "changed on disk" in conflict["state"]["message"] and conflict["state"]["dirty"] == 1, conflict
    assert conflict["on_disk"] == "changed on disk meanwhile"
    for name in ("button", "opened", "edited", "bulk_add", "saved", "after_reload", "conflict"):
        assert (out / f"caption_editor_{name}.png").is_file(), name


# --------------------------------------------------------------------------- first run: install, then the example
FIRST_RUN_PHOTOS = {
    "beach.jpg": (160, 120),
    "portrait.jpg": (96, 144),
    "square.png": (128, 128),
    "tiny.png": (72, 96),
}


def test_first_run_installs_sd_scripts_from_the_dialog_and_trains_the_example_on_a_plain_photo_folder(
    browser, comfyui_dir, comfy_python, test_checkpoint, tmp_path, monkeypatch
):
    """A new user's path: no trainer configured (no KOHYA_SS_PATH, no settings), Settings -> LoRA
    Workbench -> Install sd-scripts shows its steps, pip's line and the verdict; then the SD example
    trains a plain folder of mixed-size photos in ComfyUI/lora-projects with that trainer and samples.

    The pinned source is GitHub, which this machine cannot reach: ComfyUI is started with
    LORA_WORKBENCH_TRAINER_SOURCE (a local mirror of the same repository) in its environment, as an
    offline user would; the request names nothing and the commit stays the pinned one."""
    from PIL import Image, ImageDraw

    from lora_workbench.trainer_env import pins

    source = os.environ.get("LORA_WORKBENCH_TRAINER_SOURCE")
    if not source:
        pytest.skip(
            "LORA_WORKBENCH_TRAINER_SOURCE is not set: point it at a local sd-scripts clone or mirror"
        )
    node, chromium = browser
    for var in ("KOHYA_SS_PATH", "KOHYA_PYTHON", "LORA_WORKBENCH_TOKENIZER_CACHE", "KOHYA_SS_GUI_PATH"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    photos = home / "lora-projects" / "mochi"
    photos.mkdir(parents=True)
    for i, (name, size) in enumerate(sorted(FIRST_RUN_PHOTOS.items())):
        img = Image.new("RGB", size, (60 * i % 255, 140, 210 - 40 * i))
        ImageDraw.Draw(img).ellipse((8, 8, size[0] - 8, size[1] - 8), fill=(240, 200 - 30 * i, 40))
        img.save(photos / name)
    env = {"LORA_WORKBENCH_HOME": str(tmp_path / "workbench-home"), pins.SOURCE_ENV: source}
    server = start_comfy(
        comfyui_dir, comfy_python, home, env_extra=env, extra_args=("--base-directory", str(home), "--cpu"),
        checkpoint=test_checkpoint,
    )  # fmt: skip
    try:
        req = urllib.request.Request(
            server.url + "/settings",
            method="POST",
            data=json.dumps({"Comfy.TutorialCompleted": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).close()
        out = Path(os.environ.get("LORA_WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
        ckpt = test_checkpoint.name
        cfg = {
            "url": server.url,
            "out_dir": str(out),
            "chromium": chromium,
            "mode": "install",
            "install_timeout_s": 1500,
            "train_timeout_s": 900,
            "example": {
                "path": str(REPO / "example_workflows" / "train_a_lora_from_a_folder_of_photos.json"),
                "widgets": {
                    "DatasetSubsetWeights": {
                        "project_folder": str(photos),
                        "width": 128,
                        "height": 128,
                        "epochs": 1,
                    },
                    "KohyaLoRATrain": {"ckpt_name": ckpt},
                    "CheckpointLoaderSimple": {"ckpt_name": ckpt},
                    "EmptyLatentImage": {"width": 64, "height": 64},
                    "KSampler": {"steps": 4},
                    "KohyaSamplingOptions": {"sample_steps": 4},
                },
            },
        }
        result = drive(node, cfg, tmp_path, timeout=2700)
        steps = result["steps"]
        for name in ("install_open", "install_progress", "install_done", "example_run"):
            print(f"{name}: {json.dumps(steps.get(name), default=str)[:1500]}")
        failed = {k: v["error"][:1500] for k, v in steps.items() if not v.get("ok")}
        assert not failed, f"{failed}\n--- ComfyUI log ---\n{server.log()[-4000:]}"
        assert not our_errors(result["page_errors"]), result["page_errors"]
        before = steps["install_open"]["state"]
        assert "No managed sd-scripts yet" in before["inUse"] and before["install"] == "Install sd-scripts"
        progress = steps["install_progress"]["state"]
        assert progress["status"] == "running" and "step " in progress["step"], progress
        done = steps["install_done"]["state"]
        assert done["status"] == "done", done
        assert f"sd-scripts {pins.REF[:12]} installed" in done["verdict"], done
        assert "from managed" in done["inUse"] and done["install"] == "Reinstall"
        example = steps["example_run"]
        assert example["status"]["status_str"] == "success", example
        assert any(i.startswith("sample") or i.startswith("ComfyUI") for i in example["images"]), example
        assert (photos / "dataset.toml").is_file()
        for name in FIRST_RUN_PHOTOS:  # nothing in the user's folder was moved or renamed
            assert (photos / name).is_file(), f"{name} was moved or renamed"
        assert not trainers_alive(str(photos)), "a trainer process outlived the run"
    finally:
        stop_comfy(server)
