"""Run in ComfyUI's python: for each model header in IN.json ({name: {"shapes": {key: shape},
"prefix": str}}), ComfyUI's own model detection (the config class and its MRO) and its LoRA key map for
the model built on the meta device. Writes OUT.json {name: {"mro": [...], "image_model": str,
"key_map": [...]}}.  usage: python comfy_family_check.py COMFYUI_DIR IN.json OUT.json
"""

from __future__ import annotations

import json
import sys

comfy_dir, src, dst = sys.argv[1:4]
sys.path.insert(0, comfy_dir)
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.lora  # noqa: E402
import comfy.model_detection as md  # noqa: E402
import torch  # noqa: E402

out = {}
for name, spec in json.loads(open(src, encoding="utf-8").read()).items():
    sd = {k: torch.empty(s, device="meta") for k, s in spec["shapes"].items()}
    prefix = spec["prefix"]
    config = md.model_config_from_unet(sd, prefix)
    if config is None:
        out[name] = {"mro": [], "image_model": "", "key_map": []}
        continue
    unet_config = md.detect_unet_config(sd, prefix)
    with torch.device("meta"):
        model = config.get_model(sd, prefix, device="meta")
    out[name] = {
        "mro": [c.__name__ for c in type(config).__mro__],
        "image_model": str(unet_config.get("image_model", "")),
        "key_map": sorted(comfy.lora.model_lora_keys_unet(model, {})),
    }
open(dst, "w", encoding="utf-8").write(json.dumps(out))
