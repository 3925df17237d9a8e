"""Shared fixtures for both tiers.

Unit tier: `comfy` installs stub ComfyUI modules (folder_paths, comfy.model_management, comfy.utils,
comfy.sd, server) in sys.modules, and `pack` imports the node pack under a private package name so
its `nodes/` never collides with ComfyUI's top-level `nodes` module. The pack's relative import of the
core is aliased to the top-level `lora_workbench`, so tests and nodes share one copy of module state.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "lora_workbench_pack"


# --------------------------------------------------------------------------- ComfyUI stubs
class InterruptProcessingException(Exception):
    pass


class StubComfy:
    """Stand-ins for the ComfyUI modules the pack touches; attributes are there to inspect."""

    def __init__(self, base: Path):
        self.base = base
        self.interrupt_flag = False
        self.progress: list[tuple[int, int | None]] = []  # (value, total) per update
        self.sent: list[tuple[str, dict]] = []  # send_sync calls
        self.progress_texts: list[tuple[str, str]] = []  # (text, node_id)
        self.memory_calls: list[str] = []  # comfy.model_management unload/empty-cache calls, in order
        self.previews: list[tuple] = []  # the preview=(format, PIL image, max_size) of progress updates
        self.routes = None
        self.modules: dict[str, types.ModuleType] = {}
        self._build()

    def _build(self) -> None:
        base = self.base
        for sub in (
            "models/checkpoints",
            "models/loras",
            "models/vae",
            "models/embeddings",
            "models/upscale_models",
            "models/controlnet",
            "models/text_encoders",
            "models/clip",
            "input",
            "output",
            "temp",
            "custom_nodes",
        ):
            (base / sub).mkdir(parents=True, exist_ok=True)

        fp = types.ModuleType("folder_paths")
        fp.base_path = str(base)
        fp.models_dir = str(base / "models")
        exts = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
        fp.supported_pt_extensions = exts
        fp.folder_names_and_paths = {
            "checkpoints": ([str(base / "models/checkpoints")], exts),
            "loras": ([str(base / "models/loras")], exts),
            "vae": ([str(base / "models/vae")], exts),
            "embeddings": ([str(base / "models/embeddings")], exts),
            "upscale_models": ([str(base / "models/upscale_models")], exts),
            "controlnet": ([str(base / "models/controlnet")], exts),
            "text_encoders": ([str(base / "models/text_encoders"), str(base / "models/clip")], exts),
            "diffusion_models": ([str(base / "models/unet"), str(base / "models/diffusion_models")], exts),
            "custom_nodes": ([str(base / "custom_nodes")], set()),  # as in ComfyUI: code, not models
        }
        fp.filename_list_cache = {}

        def get_folder_paths(name):
            return list(fp.folder_names_and_paths[name][0])

        def get_filename_list(name):
            out = []
            for d in fp.folder_names_and_paths[name][0]:
                p = Path(d)
                if p.is_dir():
                    out += sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())
            fp.filename_list_cache[name] = (out, {})
            return out

        def get_full_path(name, filename):
            for d in fp.folder_names_and_paths.get(name, ([], set()))[0]:
                f = Path(d) / filename
                if f.is_file():
                    return str(f)
            return None

        def get_full_path_or_raise(name, filename):
            p = get_full_path(name, filename)
            if p is None:
                raise FileNotFoundError(f"Model in folder '{name}' with filename '{filename}' not found.")
            return p

        fp.get_folder_paths = get_folder_paths
        fp.get_filename_list = get_filename_list
        fp.get_full_path = get_full_path
        fp.get_full_path_or_raise = get_full_path_or_raise
        fp.get_output_directory = lambda: str(base / "output")
        fp.get_input_directory = lambda: str(base / "input")
        fp.get_temp_directory = lambda: str(base / "temp")

        comfy = types.ModuleType("comfy")
        comfy.__path__ = []
        mm = types.ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException

        def processing_interrupted():
            return self.interrupt_flag

        def throw_exception_if_processing_interrupted():
            if self.interrupt_flag:
                self.interrupt_flag = False
                raise InterruptProcessingException()

        def interrupt_current_processing(value=True):
            self.interrupt_flag = value

        def unload_all_models():
            self.memory_calls.append("unload_all_models")

        def soft_empty_cache(force=False):
            self.memory_calls.append("soft_empty_cache")

        mm.unload_all_models = unload_all_models
        mm.soft_empty_cache = soft_empty_cache
        mm.processing_interrupted = processing_interrupted
        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
        mm.interrupt_current_processing = interrupt_current_processing

        utils = types.ModuleType("comfy.utils")
        stub = self

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total = total
                self.current = 0
                self.node_id = node_id

            def update_absolute(self, value, total=None, preview=None):
                # The real hook (main.hijack_progress) checks the interrupt flag on every update.
                throw_exception_if_processing_interrupted()
                if total is not None:
                    self.total = total
                self.current = value
                stub.progress.append((value, self.total))
                if preview is not None:
                    stub.previews.append(preview)

            def update(self, value):
                self.update_absolute(self.current + value, self.total)

        utils.ProgressBar = ProgressBar
        sd = types.ModuleType("comfy.sd")
        lora = types.ModuleType("comfy.lora")
        # ComfyUI's key maps read the model's weights; the stub reads `lora_keys` off the fake objects.
        lora.model_lora_keys_unet = lambda model, key_map: {**key_map, **getattr(model, "lora_keys", {})}
        lora.model_lora_keys_clip = lambda clip, key_map: {**key_map, **getattr(clip, "lora_keys", {})}
        lora_convert = types.ModuleType("comfy.lora_convert")
        lora_convert.convert_lora = lambda sd: sd  # ComfyUI returns any layout it does not rewrite as is
        comfy.model_management = mm
        comfy.utils = utils
        comfy.sd = sd
        comfy.lora = lora
        comfy.lora_convert = lora_convert

        server = types.ModuleType("server")

        class PromptServer:
            instance = None

        server.PromptServer = PromptServer

        self.modules = {
            "folder_paths": fp,
            "comfy": comfy,
            "comfy.model_management": mm,
            "comfy.utils": utils,
            "comfy.sd": sd,
            "comfy.lora": lora,
            "comfy.lora_convert": lora_convert,
            "server": server,
        }

    def start_server(self):
        """Make PromptServer.instance a recorder with an aiohttp RouteTableDef (for route tests)."""
        from aiohttp import web

        stub = self

        class FakePromptServer:
            def __init__(self):
                self.routes = web.RouteTableDef()
                self.client_id = None

            def send_sync(self, event, data, sid=None):
                stub.sent.append((event, data))

            def send_progress_text(self, text, node_id, sid=None):
                stub.progress_texts.append((text, node_id))

        inst = FakePromptServer()
        self.modules["server"].PromptServer.instance = inst
        self.routes = inst.routes
        return inst


@pytest.fixture
def comfy(tmp_path, monkeypatch):
    """Stub ComfyUI modules rooted at a temporary ComfyUI folder; yields the StubComfy."""
    stub = StubComfy(tmp_path / "ComfyUI")
    for name, mod in stub.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return stub


def _load_pack() -> types.ModuleType:
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    import lora_workbench

    # Alias the pack's view of the core to the top-level package (one copy of module state).
    sys.modules[f"{PACK_NAME}.lora_workbench"] = lora_workbench
    for info in pkgutil.walk_packages(lora_workbench.__path__, "lora_workbench."):
        if info.name.endswith("__main__"):  # running it would start the CLI
            continue
        mod = importlib.import_module(info.name)
        sys.modules[f"{PACK_NAME}.{info.name}"] = mod
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pack(comfy):
    """The node pack imported as ComfyUI would (relative imports), with ComfyUI stubbed."""
    return _load_pack()


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Allow tmp_path as the only workflow root and isolate the settings file."""
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", str(tmp_path))
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "no-settings.json"))
    for var in ("SD_MODELS_PATH", "COMFYUI_PATH"):
        monkeypatch.delenv(var, raising=False)
    from lora_workbench import paths

    monkeypatch.setattr(paths, "_registered_roots", [])
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Remembered answers (the device probe's) go to a folder of this session, never the user's cache."""
    from lora_workbench import paths

    before = os.environ.get(paths.CACHE_ENV)
    os.environ[paths.CACHE_ENV] = str(tmp_path_factory.mktemp("lora-workbench-cache"))
    yield
    if before is None:
        os.environ.pop(paths.CACHE_ENV, None)
    else:
        os.environ[paths.CACHE_ENV] = before


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory):
    """The managed trainer (LORA_WORKBENCH_HOME) of this session is empty: a developer's own install
    never becomes the sd-scripts a test finds."""
    before = os.environ.get("LORA_WORKBENCH_HOME")
    os.environ["LORA_WORKBENCH_HOME"] = str(tmp_path_factory.mktemp("lora-workbench-home"))
    yield
    if before is None:
        os.environ.pop("LORA_WORKBENCH_HOME", None)
    else:
        os.environ["LORA_WORKBENCH_HOME"] = before


@pytest.fixture(autouse=True)
def _own_settings_file(tmp_path_factory, monkeypatch):
    """No test reads or writes the developer's own settings (or the run index beside them)."""
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path_factory.mktemp("settings") / "settings.json"))


@pytest.fixture(autouse=True)
def _fresh_events():
    from lora_workbench import events

    events.clear()
    yield
    events.clear()
