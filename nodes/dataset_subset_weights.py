"""Node DatasetSubsetWeights: a training project's subsets + weights -> repeats, dataset TOML, LORA_DATASET."""

from __future__ import annotations

from ..lora_workbench import events, paths
from . import _comfy

# The dataset core is imported inside INPUT_TYPES, IS_CHANGED and prepare(), not here: ComfyUI imports
# every pack at start-up, and what a node does when it runs need not cost that start-up anything.

APPLY_MODES = ["toml (non-destructive)", "rename folders"]
_MODE_KEYS = {"toml (non-destructive)": "toml", "rename folders": "rename"}


class DatasetSubsetWeights:
    """Weights per subset -> integer repeats; writes kohya's dataset TOML (or renames folders)."""

    DESCRIPTION = (
        "Reads a training project (images/N_Subject/ folders with .txt captions, optionally "
        "regularization/; or a plain folder of images, read as one subset named after it), checks it the way sd-scripts will read it (captions, unreadable images, "
        "sizes, file names it skips), sets each subset's repeats from the folder names, equal shares "
        "or your weights, optionally plans the epochs for a total number of steps, and writes kohya's "
        "dataset config (dataset.toml) - or renames the folders to N_Subject like the seed script. "
        "Shows a table with repeats, shares, the step math and the caption keywords. A subset folder of "
        "videos (.mp4, .webm, .mov, .mkv with .txt captions) is a video subset for Wan, HunyuanVideo and "
        "FramePack: its frames, fps and size are read from the headers and shown, one item per video."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training"
    FUNCTION = "prepare"
    RETURN_TYPES = ("LORA_DATASET", "STRING")
    RETURN_NAMES = ("dataset", "summary")
    OUTPUT_TOOLTIPS = (
        "The prepared dataset for KohyaLoRATrain: dataset.toml, subsets (image or video, with the "
        "videos' frame counts), repeats, steps per epoch.",
        "The summary table shown on the node.",
    )
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        from ..lora_workbench.dataset.checks import WRONG_SIZE_MODES
        from ..lora_workbench.dataset.limits import widget_range
        from ..lora_workbench.dataset.prepare import MISSING_CAPTION_MODES
        from ..lora_workbench.dataset.repeats import REPEAT_MODES
        from ..lora_workbench.dataset.scan import CAPTION_EXT

        return {
            "required": {
                "project_folder": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "The training project folder: a plain folder of images (trained as one "
                        "subset named after it, nothing moved), or images/N_Subject/ folders. dataset.toml, "
                        "output/ and logs/ go into it; a new, empty folder gets the full layout. Must lie "
                        "inside an allowed root: ComfyUI's lora-projects folder (beside input/), or "
                        "$LORA_WORKBENCH_ROOTS / `roots` in the settings.",
                    },
                ),
                "weights": (
                    "STRING",
                    {
                        "default": "",
                        "multiline": True,
                        "tooltip": "Used when repeats = weights: one `Subject: weight` per line (e.g. `Cat: 2`); a "
                        "subset's share of each epoch follows its weight. A subset not named weighs 1; 0 "
                        "excludes a subset; # starts a comment. Moving a slider of the editor below writes "
                        "this text and switches repeats to weights.",
                    },
                ),
                "width": (
                    "INT",
                    {
                        "default": 512,
                        **widget_range("width"),
                        "step": 64,
                        "tooltip": "Training resolution width (the trainer uses it unless its own width is "
                        "set). With buckets on, images larger than width x height are scaled down to its "
                        "area; with buckets off every image must be exactly width x height.",
                    },
                ),
                "height": (
                    "INT",
                    {
                        "default": 512,
                        **widget_range("height"),
                        "step": 64,
                        "tooltip": "Training resolution height (the trainer uses it unless its own height "
                        "is set).",
                    },
                ),
                "enable_bucket": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Aspect-ratio buckets (on by default): photos of any size and shape train as "
                        "they are, grouped by aspect ratio; larger ones are scaled down, smaller ones train at "
                        "their own size (never upscaled). Off: every image must match the resolution (see "
                        "wrong_size).",
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
                        **widget_range("batch_size"),
                        "tooltip": "Images per training step (for the TOML and the step math); the trainer "
                        "uses it unless its own batch_size is set.",
                    },
                ),
                "epochs": (
                    "INT",
                    {
                        "default": 3,
                        **widget_range("epochs"),
                        "tooltip": "Passes over the dataset: the step math shown here, and the trainer's epochs "
                        "unless its own epochs is set. With target_steps the node picks the epochs instead.",
                    },
                ),
                "max_items_per_epoch": (
                    "INT",
                    {
                        "default": 0,
                        **widget_range("max_items_per_epoch"),
                        "tooltip": "Step budget: the most images x repeats per epoch the balancing may use; 0 = "
                        "10000. Exact shares are used when they fit, else the closest within it.",
                    },
                ),
            },
            # Optional, after the older widgets: saved workflows keep their widget positions (see
            # web/weights_editor.js for how a workflow saved without `repeats` is migrated).
            "optional": {
                "repeats": (
                    list(REPEAT_MODES),
                    {
                        "default": REPEAT_MODES[0],
                        "tooltip": "How many times each subset's images are seen per epoch. folders: the N_ prefix "
                        "of each folder, exactly as named (kohya's convention; no prefix counts as 1). equal: "
                        "every subset the same share of an epoch (15 images x1 = 5 images x3). weights: the "
                        "weights text sets each subset's share.",
                    },
                ),
                "target_steps": (
                    "INT",
                    {
                        "default": 0,
                        **widget_range("target_steps"),
                        "tooltip": "Plan by total steps (e.g. 2500): picks the epochs, and scales the repeats "
                        "within the step budget keeping their shares, so the total lands closest to this; "
                        "KohyaLoRATrain then trains exactly that many epochs. 0 = use epochs.",
                    },
                ),
                "wrong_size": (
                    list(WRONG_SIZE_MODES),
                    {
                        "default": "bucket",
                        "tooltip": "With buckets off, images that are not width x height: bucket (turn buckets "
                        "on, never upscaling; the default), error (stop and list them) or resize (train on "
                        "resized, center-cropped copies in <project>/cache/, made once per image and reused; "
                        "the originals are untouched).",
                    },
                ),
                "caption_extension": (
                    "STRING",
                    {
                        "default": CAPTION_EXT,
                        "tooltip": "The caption file beside each image (img.png -> img.txt); written into "
                        "dataset.toml for every subset, so the check here and sd-scripts read the same files.",
                    },
                ),
                # appended last: workflows saved before it keep their widget positions (default 1)
                "folder_repeats": (
                    "INT",
                    {
                        "default": 1,
                        **widget_range("folder_repeats"),
                        "tooltip": "Repeats of a plain folder of images: the images right in the project "
                        "folder (or right in its images/, no N_Subject folders) are one subset named after "
                        "the folder, seen this many times per epoch. Nothing in the folder is moved or "
                        "renamed. Subset folders take their repeats from their N_ prefix instead.",
                    },
                ),
                "caption_options": (
                    "LORA_TRAIN_OPTIONS",
                    {
                        "tooltip": "Caption and augmentation settings from a Kohya Caption Options node "
                        "(shuffle, keep tokens, caption/tag dropout, flip, color aug, random crop), written "
                        "into every subset of the dataset TOML; they win over the trainer's run-wide ones.",
                    },
                ),
                # last: workflows saved before it keep their widget positions and get "error", as before
                "missing_caption": (
                    list(MISSING_CAPTION_MODES),
                    {
                        "default": MISSING_CAPTION_MODES[0],
                        "tooltip": "A training image without a caption file: error (stop and list them), "
                        "class_tokens (train it on the folder's subject, e.g. `Cat` for 3_Cat, as sd-scripts "
                        "does) or empty (train it with an empty caption).",
                    },
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, project_folder="", weights="", caption_extension=None, **kwargs):
        # The dataset changes outside the graph: re-run when the folder listing (names, sizes, mtimes) does.
        from ..lora_workbench.dataset import fingerprint
        from ..lora_workbench.dataset.confined import Guard
        from ..lora_workbench.dataset.scan import CAPTION_EXT

        try:
            root = paths.confine(project_folder, what="project folder")
            guard = Guard(paths.allowed_roots())
            return fingerprint.listing_fingerprint(root, guard, caption_extension or CAPTION_EXT)
        except Exception:
            return float("nan")

    def prepare(
        self,
        project_folder: str,
        weights: str = "",
        width: int = 512,
        height: int = 512,
        enable_bucket: bool = True,
        apply_mode: str = APPLY_MODES[0],
        batch_size: int = 1,
        epochs: int = 3,
        max_items_per_epoch: int = 0,
        repeats: str | None = None,  # missing in workflows saved before the modes: see resolve_mode
        target_steps: int = 0,
        wrong_size: str = "bucket",  # missing in workflows saved before it: buckets, never an error
        caption_extension: str | None = None,  # None: the core's default (.txt)
        unique_id=None,
        caption_options=None,
        folder_repeats: int = 1,
        missing_caption: str = "error",
    ):
        from ..lora_workbench.dataset import prepare, project
        from ..lora_workbench.dataset.confined import Guard
        from ..lora_workbench.dataset.prepare import DatasetOptions
        from ..lora_workbench.dataset.scan import CAPTION_EXT

        root = paths.confine(project_folder, what="project folder")
        per_subset = _caption_keys(caption_options, unique_id)
        guard = Guard(paths.allowed_roots())
        # only a new (missing or empty) folder gets the layout: never scaffold into an unrelated folder
        created = project.init_project(root, guard) if project.is_new(root, guard) else []
        options = DatasetOptions(
            weights_text=weights,
            resolution=(width, height),
            enable_bucket=enable_bucket,
            batch_size=batch_size,
            epochs=epochs,
            max_items_per_epoch=max_items_per_epoch or None,
            repeats=repeats,
            target_steps=target_steps,
            wrong_size=wrong_size,
            caption_extension=CAPTION_EXT if caption_extension is None else caption_extension,
            folder_repeats=folder_repeats,
            subset_options=per_subset,
            missing_caption=missing_caption,
        )
        ds, text = prepare.prepare_dataset(
            root,
            options,
            apply_mode=_MODE_KEYS.get(apply_mode, apply_mode),
            guard=guard,
            check_cancel=_comfy.raise_if_interrupted,  # Cancel stops the resized copies between images
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
