"""Importing the pack costs ComfyUI nothing: no torch, no watchdog, no threads; every input explained."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

HEAVY = ("torch", "watchdog", "numpy", "PIL", "safetensors", "aiohttp")

# Import the pack the way ComfyUI's nodes.load_custom_node does (a module named after its path, with
# submodule_search_locations), in a fresh interpreter with the ComfyUI modules stubbed.
PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys, threading, time, types
    repo = sys.argv[1]
    fp = types.ModuleType("folder_paths")
    fp.base_path = repo; fp.models_dir = repo + "/models"; fp.folder_names_and_paths = {}
    fp.filename_list_cache = {}
    fp.get_filename_list = lambda name: []
    fp.get_folder_paths = lambda name: []
    server = types.ModuleType("server")
    class PromptServer:
        instance = None
    server.PromptServer = PromptServer
    comfy = types.ModuleType("comfy"); comfy.__path__ = []
    sys.modules.update({"folder_paths": fp, "server": server, "comfy": comfy})
    before_threads = threading.active_count()
    before = set(sys.modules)
    t0 = time.perf_counter()
    name = repo.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, repo + "/__init__.py",
                                                  submodule_search_locations=[repo])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    took = time.perf_counter() - t0
    print(json.dumps({"nodes": sorted(mod.NODE_CLASS_MAPPINGS), "took": took,
                      "threads": threading.active_count() - before_threads,
                      "new_modules": sorted(set(sys.modules) - before)}))
    """
)


def probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_pack_imports_nothing_heavy_and_starts_no_threads():
    got = probe()
    heavy = [m for m in got["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"importing the pack imported {heavy}"
    assert got["threads"] == 0
    assert "LinkModelLibrary" in got["nodes"]
    print(f"pack import took {got['took'] * 1000:.1f} ms")


def test_the_cli_imports_nothing_heavy():
    code = (
        "import sys; before=set(sys.modules); from lora_workbench import cli; cli.build_parser(); "
        f"print(sorted(m for m in set(sys.modules)-before if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_node_input_has_a_tooltip_and_the_pack_category(pack):
    from lora_workbench_pack.nodes import _comfy

    assert pack.NODE_CLASS_MAPPINGS, "no nodes registered"
    from lora_workbench.training.settings import option_groups

    known = {
        "LinkModelLibrary",
        "SaveTrainingImages",
        "DatasetSubsetWeights",
        "KohyaLoRATrain",
        "LoadTrainedLoRA",
        "CaptionDatasetWD14",
    }
    known |= {g.node for g in option_groups()} | {"KohyaGuiConfigOptions"}
    assert set(pack.NODE_CLASS_MAPPINGS) <= known
    for name, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert cls.CATEGORY.startswith(_comfy.CATEGORY), name
        assert name in pack.NODE_DISPLAY_NAME_MAPPINGS
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for input_name, (_type, *opts) in spec.get(section, {}).items():
                assert opts and opts[0].get("tooltip"), f"{name}.{input_name} has no tooltip"
        tips = getattr(cls, "OUTPUT_TOOLTIPS", ())
        assert len(tips) == len(cls.RETURN_TYPES) and all(tips), f"{name} has an output without a tooltip"


def test_the_pack_registers_link_model_library(pack):
    cls = pack.NODE_CLASS_MAPPINGS["LinkModelLibrary"]
    assert cls.OUTPUT_NODE and cls.RETURN_TYPES == ("STRING",)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["LinkModelLibrary"] == "Link Model Library"


# Core modules no node needs until it runs (or is listed): ComfyUI's start-up must not pay for them
# (bench/bench_pack_import.py, target <= 20 ms).
RUN_TIME_ONLY = (
    "training.options",
    "training.backends.sd_scripts.kohya_gui",
    "training.validation",
    "training.train",
    "dataset.",
    "captioning.tag",
    "captioning.staging",
    "captioning.process",
)


def test_importing_the_pack_leaves_the_run_time_core_for_later():
    got = probe()
    early = [m for m in got["new_modules"] if any(f"lora_workbench.{part}" in m for part in RUN_TIME_ONLY)]
    assert early == [], f"importing the pack imported {early}"
