"""Thin node adapters, one module per node; each exports NODE_CLASS_MAPPINGS and display names."""

from __future__ import annotations

from . import (
    caption_dataset_wd14,
    dataset_subset_weights,
    kohya_gui_config,
    kohya_lora_train,
    kohya_train_options,
    link_model_library,
    load_trained_lora,
    save_training_images,
)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _module in (
    link_model_library,
    save_training_images,
    dataset_subset_weights,
    caption_dataset_wd14,
    kohya_lora_train,
    kohya_train_options,
    kohya_gui_config,
    load_trained_lora,
):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
