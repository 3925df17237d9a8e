"""Thin node adapters, one module per node; each exports NODE_CLASS_MAPPINGS and display names."""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("lora_workbench")

_NODE_MODULES = ("link_model_library", "dataset_subset_weights", "kohya_lora_train", "load_trained_lora")

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _name in _NODE_MODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(_name):  # that area has not landed yet
            continue
        raise
    NODE_CLASS_MAPPINGS.update(getattr(_mod, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
