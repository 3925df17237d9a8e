"""Node DatasetSubsetWeights: a training project's subsets + weights -> repeats, dataset TOML, LORA_DATASET."""

from __future__ import annotations

from ..lora_workbench import events, paths
from . import _comfy

# The dataset core is imported inside IS_CHANGED and prepare(), not here: ComfyUI imports every pack
# at start-up, and what a node does when it runs need not cost that start-up anything.

APPLY_MODES = ["toml (non-destructive)", "rename folders"]
_MODE_KEYS = {"toml (non-destructive)": "toml", "rename folders": "rename"}


class DatasetSubsetWeights:
    """Weights per subset -> integer repeats; writes kohya's dataset TOML (or renames folders)."""

    DESCRIPTION = (
        "Reads a training project (images/N_Subject/ folders with .txt captions, optionally "
        "regularization/), checks it (captions, unreadable images, sizes), turns a weight per subset "
        "into integer repeats so each subset gets its share of every epoch, and writes kohya's "
        "dataset config (dataset.toml) - or renames the folders to N_Subject like the seed script. "
        "Shows a table with repeats, shares, the step math and the caption keywords."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training"
    FUNCTION = "prepare"
    RETURN_TYPES = ("LORA_DATASET", "STRING")
    RETURN_NAMES = ("dataset", "summary")
    OUTPUT_TOOLTIPS = (
        "The prepared dataset for KohyaLoRATrain: dataset.toml, subsets, repeats, steps per epoch.",
        "The summary table shown on the node.",
    )
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project_folder": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "The training project folder (images/N_Subject/, regularization/, output/, logs/). "
                        "A new folder gets that layout. Must lie inside an allowed root "
                        "($LORA_WORKBENCH_ROOTS or `roots` in the settings).",
                    },
                ),
                "weights": (
                    "STRING",
                    {
                        "default": "",
                        "multiline": True,
                        "tooltip": "One `Subject: weight` per line (e.g. `Cat: 2`); a subset's share of each epoch "
                        "follows its weight. Empty = equal weight per subset; 0 excludes a subset; "
                        "# starts a comment.",
                    },
                ),
                "width": (
                    "INT",
                    {
                        "default": 512,
                        "min": 64,
                        "max": 8192,
                        "step": 64,
                        "tooltip": "Training resolution width. With buckets off every image must be "
                        "exactly width x height.",
                    },
                ),
                "height": (
                    "INT",
                    {
                        "default": 512,
                        "min": 64,
                        "max": 8192,
                        "step": 64,
                        "tooltip": "Training resolution height.",
                    },
                ),
                "enable_bucket": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Aspect-ratio buckets: images of different sizes are allowed (kohya groups them). "
                        "Off: every image must match the resolution.",
                    },
                ),
                "apply_mode": (
                    APPLY_MODES,
                    {
                        "default": APPLY_MODES[0],
                        "tooltip": "toml: write <project>/dataset.toml with the repeats and leave the folders alone. "
                        "rename folders: also rename each subset folder to N_Subject (journaled: an "
                        "interrupted rename is finished on the next run).",
                    },
                ),
                "batch_size": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 256,
                        "tooltip": "Images per training step (for the TOML and the step math).",
                    },
                ),
                "epochs": (
                    "INT",
                    {
                        "default": 3,
                        "min": 1,
                        "max": 10000,
                        "tooltip": "Epochs, for the step math shown here only (the trainer sets its own).",
                    },
                ),
                "max_items_per_epoch": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 10_000_000,
                        "tooltip": "Step budget: the most images x repeats per epoch the balancing may use; 0 = "
                        "10000. Exact shares are used when they fit, else the closest within it.",
                    },
                ),
            },
            "optional": {
                "caption_options": (
                    "LORA_TRAIN_OPTIONS",
                    {
                        "tooltip": "Caption and augmentation settings from a Kohya Caption Options node "
                        "(shuffle, keep tokens, caption/tag dropout, flip, color aug, random crop), written "
                        "into every subset of the dataset TOML; they win over the trainer's run-wide ones.",
                    },
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, project_folder="", weights="", **kwargs):
        # The dataset changes outside the graph: re-run when the folder listing (names, sizes, mtimes) does.
        from ..lora_workbench.dataset import scan as dataset_core

        try:
            root = paths.confine(project_folder, what="project folder")
            return dataset_core.listing_fingerprint(root)
        except Exception:
            return float("nan")

    def prepare(
        self,
        project_folder: str,
        weights: str = "",
        width: int = 512,
        height: int = 512,
        enable_bucket: bool = False,
        apply_mode: str = APPLY_MODES[0],
        batch_size: int = 1,
        epochs: int = 3,
        max_items_per_epoch: int = 0,
        unique_id=None,
        caption_options=None,
    ):
        from ..lora_workbench.dataset import project
        from ..lora_workbench.dataset import scan as dataset_core

        root = paths.confine(project_folder, what="project folder")
        per_subset = _caption_keys(caption_options, unique_id)
        # only a new (missing or empty) folder gets the layout: never scaffold into an unrelated folder
        is_new = not root.exists() or (root.is_dir() and not any(root.iterdir()))
        created = project.init_project(root) if is_new else []
        mode = _MODE_KEYS.get(apply_mode, apply_mode)
        ds, text = dataset_core.prepare_dataset(
            root,
            weights,
            (width, height),
            enable_bucket,
            batch_size,
            mode,
            max_items_per_epoch=max_items_per_epoch or None,
            epochs=epochs,
            subset_options=per_subset,
        )
        if created:
            text += f"\nCreated the project layout ({len(created)} folders)."
        _comfy.send_progress_text(text, unique_id)
        events.publish(events.DATASET, {"node": unique_id, "summary": text, "dataset": ds.to_dict()})
        return {"ui": {"text": [text]}, "result": (ds, text)}


def _caption_keys(options, unique_id) -> dict:
    """sd-scripts' subset keys of the caption settings in `caption_options` (features hook)."""
    if options is None:
        return {}
    from ..lora_workbench.training.command import subset_caption_keys
    from ..lora_workbench.training.settings import SETTING

    captions = {k: v for k, v in options.base.items() if SETTING[k].section == "subset_defaults"}
    return subset_caption_keys(
        {**captions, **options.values}, f"DatasetSubsetWeights {unique_id} caption_options"
    )


NODE_CLASS_MAPPINGS = {"DatasetSubsetWeights": DatasetSubsetWeights}
NODE_DISPLAY_NAME_MAPPINGS = {"DatasetSubsetWeights": "Dataset Subset Weights"}
