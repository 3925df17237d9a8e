"""Node SaveTrainingImages: an IMAGE batch (and masks, captions) from the graph -> a training project's
images/<repeats>_<subject>/ folder, named by content hash; outputs the project folder for the dataset node.

Every input arrives as a list (INPUT_IS_LIST), so a caption node's list output (one string per image)
comes through whole; ComfyUI tensors become Pillow images here and the core does the rest.
"""

from __future__ import annotations

from ..lora_workbench import paths
from . import _comfy

# The dataset core is imported inside INPUT_TYPES and save(), not here: ComfyUI's start-up pays nothing.


class SaveTrainingImages:
    """Stores images from the graph as training data (kohya's N_Subject folders, captions beside them)."""

    DESCRIPTION = (
        "Saves an IMAGE batch into a training project as images/<repeats>_<subject>/<content hash>.png with a "
        "caption file beside each: the same image twice is one file, queuing again adds nothing, a changed "
        "caption rewrites only its .txt (and removes sd-scripts' text-encoder caches of it). Masks are stored "
        "as the PNG's alpha and the subset trains with alpha_mask. Wire project_folder into Dataset Subset "
        "Weights."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training"
    FUNCTION = "save"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("project_folder", "summary")
    OUTPUT_TOOLTIPS = (
        "The training project folder the images were saved into: connect it to Dataset Subset Weights.",
        "What was saved: new, unchanged and re-captioned images.",
    )
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        from ..lora_workbench.dataset.captions_merge import CAPTION_MODES
        from ..lora_workbench.dataset.limits import widget_range
        from ..lora_workbench.dataset.pictures import FIT_MODES

        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to train on (a batch, or several batches)."}),
                "project_folder": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "The training project folder (a new one gets images/, regularization/, "
                        "output/, logs/). Must lie inside an allowed root ($LORA_WORKBENCH_ROOTS or `roots` "
                        "in the settings).",
                    },
                ),
                "subject": (
                    "STRING",
                    {
                        "default": "subject",
                        "tooltip": "The subset's name: images go to images/<repeats>_<subject>/, and the subject "
                        "is the class token of images without a caption. Letters, digits, spaces, - and _.",
                    },
                ),
                "repeats": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 10_000,
                        "tooltip": "The folder's N_ prefix: how often kohya shows each image per epoch (Dataset "
                        "Subset Weights can set the repeats from weights instead).",
                    },
                ),
            },
            "optional": {
                "captions": (
                    "STRING",
                    {
                        "default": "",
                        "multiline": True,
                        "tooltip": "One caption for every image, one line per image, or a caption node's list "
                        "(one string per image, e.g. a tagger's output). Empty: no caption unless one exists.",
                    },
                ),
                "masks": (
                    "MASK",
                    {
                        "tooltip": "Optional masks (one for all images or one per image; white = the loss "
                        "counts there). Stored as the PNG's alpha; the subset then trains with alpha_mask.",
                    },
                ),
                "trigger_word": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Put first in every caption, once (a copy elsewhere in the caption is moved, "
                        "never doubled). One tag: no comma.",
                    },
                ),
                "caption_mode": (
                    list(CAPTION_MODES),
                    {
                        "default": CAPTION_MODES[0],
                        "tooltip": "For an image that already has a caption: replace it, append the new tags it "
                        "lacks, or keep the existing caption.",
                    },
                ),
                "fit": (
                    list(FIT_MODES),
                    {
                        "default": FIT_MODES[0],
                        "tooltip": "none: save as they are. crop: scale down to cover width x height and cut the "
                        "middle. pad: scale down to fit inside and pad with black. Never enlarges: an image "
                        "smaller than the size is an error for crop (upscale it in the graph first).",
                    },
                ),
                "width": (
                    "INT",
                    {
                        "default": 512,
                        **widget_range("width"),
                        "step": 64,
                        "tooltip": "Training width for fit crop/pad.",
                    },
                ),
                "height": (
                    "INT",
                    {
                        "default": 512,
                        **widget_range("height"),
                        "step": 64,
                        "tooltip": "Training height for fit crop/pad.",
                    },
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def save(self, images, project_folder, subject, repeats, **optional):
        from ..lora_workbench.dataset.add_images import AddSpec, add_images
        from ..lora_workbench.dataset.confined import Guard

        one = {k: _first(v) for k, v in optional.items() if k not in ("captions", "masks")}
        root = paths.confine(_first(project_folder), what="project folder")
        spec = AddSpec(
            project_dir=str(root),
            subject=_first(subject) or "",
            repeats=_first(repeats),
            captions=optional.get("captions"),
            trigger_word=one.get("trigger_word") or "",
            caption_mode=one.get("caption_mode") or AddSpec.caption_mode,
            fit=one.get("fit") or AddSpec.fit,
            resolution=(one.get("width") or 512, one.get("height") or 512),
        )
        report = add_images(spec, to_pictures(images, optional.get("masks")), Guard(paths.allowed_roots()))
        text = report.summary()
        _comfy.send_progress_text(text, one.get("unique_id"))
        return {"ui": {"text": [text]}, "result": (str(root), text)}


def _first(value):
    """A scalar input under INPUT_IS_LIST arrives as a one-item list."""
    return value[0] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def to_pictures(images, masks=None) -> list:
    """ComfyUI IMAGE batches ([B,H,W,C] floats 0..1) and MASK batches ([B,H,W] or [H,W]) as Pillow
    pictures; the sizes are checked from the shapes before a pixel is converted."""
    from ..lora_workbench.dataset import pictures
    from ..lora_workbench.errors import ValidationError

    frames = [f for batch in _as_list(images) for f in (batch if batch.ndim == 4 else batch[None])]
    pictures.check_sizes([(int(f.shape[1]), int(f.shape[0])) for f in frames])
    planes = [m for batch in _as_list(masks) for m in (batch if batch.ndim == 3 else batch[None])]
    if planes and len(planes) not in (1, len(frames)):
        raise ValidationError(
            f"masks holds {len(planes)} masks for {len(frames)} image(s): give one mask for all or one per image."
        )
    planes = planes * len(frames) if len(planes) == 1 else planes
    return [
        pictures.Picture(_pil(f), _pil(planes[i]) if planes else None, f"image {i + 1}")
        for i, f in enumerate(frames)
    ]


def _as_list(value) -> list:
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _pil(tensor):
    import numpy as np
    from PIL import Image

    arr = tensor.detach().cpu().float().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
    arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    channels = arr.shape[2]
    if channels == 1:
        return Image.fromarray(arr[:, :, 0], "L").convert("RGB")
    return Image.fromarray(
        arr[:, :, :4] if channels >= 4 else arr[:, :, :3], "RGBA" if channels >= 4 else "RGB"
    )


NODE_CLASS_MAPPINGS = {"SaveTrainingImages": SaveTrainingImages}
NODE_DISPLAY_NAME_MAPPINGS = {"SaveTrainingImages": "Save Training Images"}
