"""Node CaptionDatasetWD14: caption a training project with sd-scripts' own WD14 tagger.

Thin adapter: the widgets come from the tagger's option table (captioning/wd14.py OPTIONS), the run
is captioning.tag.caption_project; ComfyUI's progress bar, live node text and interrupt are wired in
here through _comfy. The model folder is never a workflow input: it is the `wd14_tagger_dir` setting
or ComfyUI's models/wd14_tagger.
"""

from __future__ import annotations

from ..lora_workbench import paths
from ..lora_workbench.captioning.wd14 import OPTIONS, Option
from . import _comfy

# The tagging run's modules (staging, the process runner, the dataset scan) are imported when the node
# runs: ComfyUI imports every pack at start-up.


def _widget(option: Option) -> tuple:
    extra: dict = {"default": option.default, "tooltip": option.tooltip}
    if option.choices:
        return list(option.choices), extra
    if option.kind is bool:
        return "BOOLEAN", extra
    if option.kind in (int, float):
        extra.update(min=option.low, max=option.high, step=option.step)
        return ("INT" if option.kind is int else "FLOAT"), extra
    return "STRING", extra


class CaptionDatasetWD14:
    """Tag every image of a project's subsets with WD14 (sd-scripts' tagger) and write the captions."""

    DESCRIPTION = (
        "Captions a training project's images with the WD14 tagger, run by your sd-scripts' own "
        "finetune/tag_images_by_wd14_tagger.py --onnx in the trainer's environment (nothing is installed "
        "into ComfyUI's). Puts your trigger word first, leaves out undesired tags, overwrites, appends to "
        "or keeps existing captions. The model is read from ComfyUI's models/wd14_tagger (or the "
        "`wd14_tagger_dir` setting) and downloaded only with allow_download. Shows the batches live; "
        "Cancel stops the tagger and changes no caption. Chain project_folder into Dataset Subset Weights."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training"
    OUTPUT_NODE = True
    FUNCTION = "caption"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("project_folder", "summary")
    OUTPUT_TOOLTIPS = (
        "The project folder, unchanged: wire it into Dataset Subset Weights' project_folder so the dataset "
        "is read after the captions are written.",
        "What was tagged: captions written, unchanged, kept, the most frequent tags, and any image left out "
        "with why.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        project = (
            "STRING",
            {
                "default": "",
                "tooltip": "The training project folder (images/N_Subject/ subsets). Must lie inside an "
                "allowed root ($LORA_WORKBENCH_ROOTS or `roots` in the settings).",
            },
        )
        return {
            "required": {"project_folder": project, **{o.name: _widget(o) for o in OPTIONS}},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, project_folder="", **_kw):
        # Re-run when images are added, removed or replaced; the captions this node writes are left out
        # (the extension matches no file), so a finished run is not repeated on the next queue.
        from ..lora_workbench.dataset import fingerprint
        from ..lora_workbench.dataset.confined import Guard

        try:
            root = paths.confine(project_folder, what="project folder")
            return fingerprint.listing_fingerprint(root, Guard(paths.allowed_roots()), "\0images-only")
        except Exception:
            return float("nan")

    def caption(self, project_folder, unique_id=None, **options):
        from ..lora_workbench.captioning import tag, wd14
        from ..lora_workbench.dataset.confined import Guard

        node_id = str(unique_id) if unique_id is not None else None
        root = paths.confine(project_folder, what="project folder", must_exist=True)
        spec = wd14.TaggerSpec.from_values(str(root), str(_model_dir()), options)
        pbar = _comfy.progress_bar(1, node_id)

        def on_progress(progress):
            total = max(1, progress.total)
            _comfy.update_progress(pbar, min(progress.done, total), total)  # raises on Cancel
            _comfy.send_progress_text(progress.text(), node_id)

        hooks = tag.Hooks(on_progress=on_progress, should_cancel=_comfy.interrupted)
        try:
            report = tag.caption_project(spec, Guard(paths.allowed_roots()), hooks)
        except tag.TaggingCancelled:
            _comfy.raise_if_interrupted()  # ComfyUI's own interrupt, so the prompt ends "interrupted"
            raise
        summary = report.summary()
        _comfy.send_progress_text(summary.splitlines()[0], node_id)
        return {"ui": {"text": [summary]}, "result": (str(root), summary)}


def _model_dir():
    from ..lora_workbench.captioning import wd14

    try:
        models = _comfy.folder_paths().models_dir
    except Exception:
        models = None
    where = wd14.default_model_dir(models)
    if where is None:
        from ..lora_workbench.errors import ValidationError

        raise ValidationError(
            f"No folder for the WD14 tagger model is known; set `{wd14.MODEL_DIR_SETTING}` in the settings."
        )
    return where


NODE_CLASS_MAPPINGS = {"CaptionDatasetWD14": CaptionDatasetWD14}
NODE_DISPLAY_NAME_MAPPINGS = {"CaptionDatasetWD14": "Caption Dataset (WD14)"}
