"""Run in ComfyUI's python: for each entry of IN.json ({name: {"model": {key: shape}, "lora": path}}),
ComfyUI's own model detection on the DiT's key names and shapes, the model built on the meta device,
and the LoRA file loaded as ComfyUI's LoRA loader does (`comfy.lora_convert.convert_lora`, then
`comfy.lora.load_lora` with `model_lora_keys_unet`'s key map). Writes OUT.json {name: {"config": class
name or "", "mro": [...], "keys": n, "loaded": n, "not_loaded": [keys ComfyUI logged as not loaded],
"pack_unmapped_modules": [the modules the pack's lora_keys.unmapped_modules counts], "error": why the
model could not be built, if so}}.
usage: python comfy_lora_keys.py COMFYUI_DIR IN.json OUT.json
"""

from __future__ import annotations

import json
import logging
import sys

comfy_dir, src, dst = sys.argv[1:4]
sys.path.insert(0, comfy_dir)
sys.path.insert(1, str(__import__("pathlib").Path(__file__).resolve().parents[3]))  # the pack's core
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.lora  # noqa: E402
import comfy.lora_convert  # noqa: E402
import comfy.model_detection as md  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402

from lora_workbench.modelfiles import lora_keys  # noqa: E402


class NotLoaded(logging.Handler):
    """Collects the keys ComfyUI's load_lora logs as 'lora key not loaded: <key>'."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.keys: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("lora key not loaded: "):
            self.keys.append(message[len("lora key not loaded: ") :])


def check(spec) -> dict:
    sd = {k: torch.empty(s, device="meta") for k, s in spec["model"].items()}
    config = md.model_config_from_unet(sd, "")
    if config is None:
        return {"config": "", "mro": [], "keys": 0, "loaded": 0, "not_loaded": []}
    with torch.device("meta"):
        model = config.get_model(sd, "", device="meta")
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    lora = comfy.lora_convert.convert_lora(comfy.utils.load_torch_file(spec["lora"]))
    _total, ours = lora_keys.unmapped_modules(lora, key_map)  # what LoadTrainedLoRA's check counts
    handler = NotLoaded()
    logging.getLogger().addHandler(handler)
    try:
        patches = comfy.lora.load_lora(lora, key_map)
    finally:
        logging.getLogger().removeHandler(handler)
    return {
        "config": type(config).__name__,
        "mro": [c.__name__ for c in type(config).__mro__],
        "keys": len(lora),
        "patched_weights": len(patches),
        "loaded": len(lora) - len(handler.keys),
        "not_loaded": handler.keys,
        "pack_unmapped_modules": ours,
    }


def check_or_error(spec) -> dict:
    """A DiT this ComfyUI does not know may also be detected as a relative it cannot build."""
    try:
        return check(spec)
    except Exception as exc:
        return {"config": "", "mro": [], "keys": 0, "loaded": 0, "not_loaded": [], "error": repr(exc)[:300]}


out = {name: check_or_error(spec) for name, spec in json.loads(open(src, encoding="utf-8").read()).items()}
open(dst, "w", encoding="utf-8").write(json.dumps(out))
