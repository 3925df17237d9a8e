"""The objects that travel between nodes (LORA_DATASET, TRAINED_LORA) and between core and CLI.

Plain dataclasses with to_dict()/from_dict() so the CLI, the HTTP routes and the tests can
serialise them as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _from_dict(cls, data: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class DatasetSubset:
    """One `N_Subject` folder as it will be trained."""

    name: str  # the subject, e.g. "Subject" for 3_Subject
    image_dir: str  # absolute folder path (a video subset's videos are there too)
    images: int  # the files trained once per repeat: images, or videos in a video subset (kind)
    repeats: int  # num_repeats written to the TOML (or the folder prefix)
    weight: float = 1.0  # the user's weight (0 = excluded)
    class_tokens: str = ""  # trigger word(s) for this subset
    is_reg: bool = False  # regularization subset
    share: float = 0.0  # achieved share of the epoch's non-reg items (images x repeats / total)
    target_share: float = 0.0  # the share the weight asked for
    alpha_mask: bool = False  # its PNGs carry masks as alpha (Save Training Images): sd-scripts' alpha_mask
    # A video subset (musubi-tuner's video_directory; an image subset is its image_directory): its
    # videos, their frame counts (fewest, most; per file in video_frames) and their frame rates.
    kind: str = "image"  # "image" | "video"
    video_count: int = 0
    frames_min: int = 0
    frames_max: int = 0
    fps: list[float] = field(default_factory=list)  # the distinct frame rates, lowest first
    video_frames: dict[str, int] = field(default_factory=dict)  # video file name -> frames (header)
    # Image pairs (FLUX.1 Kontext, Qwen-Image-Edit): the subset's control/ folder (musubi-tuner's
    # control_directory), how many control images it holds and how many training images have none.
    control_dir: str = ""
    control_count: int = 0
    control_missing: int = 0

    @property
    def items(self) -> int:
        """Items per epoch: each image or video once per repeat."""
        return self.images * self.repeats

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSubset:
        return _from_dict(cls, data)


@dataclass
class LoraDataset:
    """Output of DatasetSubsetWeights (LORA_DATASET): what KohyaLoRATrain needs to train."""

    project_dir: str  # the training project (images/, regularization/, output/, logs/)
    toml_path: str  # kohya dataset config (--dataset_config)
    resolution: tuple[int, int]  # (width, height)
    enable_bucket: bool
    batch_size: int
    subsets: list[DatasetSubset]
    items_per_epoch: int  # sum(images x repeats) over non-reg subsets, x2 with regularization
    steps_per_epoch: int  # ceil(items_per_epoch / batch_size) (kohya's bucket rounding may add a few)
    caption_extension: str = ".txt"
    fingerprint: str = ""  # content hash of images, captions and the TOML: the training cache key uses it
    warnings: list[str] = field(default_factory=list)
    # The step plan (DatasetSubsetWeights `target_steps`): the epochs the node chose so that
    # steps_per_epoch x planned_epochs lands closest to target_steps. 0 = no plan: the trainer's epochs.
    planned_epochs: int = 0
    target_steps: int = 0
    # The dataset node's epochs: what the trainer trains when its own epochs is 0 (0 = not recorded,
    # a dataset.toml written before it: the trainer's old default then).
    epochs: int = 0

    @property
    def class_tokens(self) -> list[str]:
        """Distinct trigger words of the non-reg subsets, in subset order."""
        out: list[str] = []
        for s in self.subsets:
            if not s.is_reg and s.class_tokens and s.class_tokens not in out:
                out.append(s.class_tokens)
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["resolution"] = list(self.resolution)
        d["class_tokens"] = self.class_tokens
        return d

    @classmethod
    def from_dict(cls, data: dict) -> LoraDataset:
        obj = _from_dict(cls, data)
        obj.resolution = tuple(obj.resolution)  # type: ignore[assignment]
        obj.subsets = [s if isinstance(s, DatasetSubset) else DatasetSubset.from_dict(s) for s in obj.subsets]
        return obj


@dataclass
class TrainedLora:
    """Output of KohyaLoRATrain (TRAINED_LORA): the files a run produced, for LoadTrainedLoRA."""

    path: str  # the final LoRA file
    epoch_paths: list[str] = field(default_factory=list)  # per-epoch files, epoch 1 first (final excluded)
    base_model: str = ""  # the checkpoint it was trained on
    base_arch: str = ""  # "sd1", "sd2", "sdxl"
    trigger_words: list[str] = field(default_factory=list)
    output_dir: str = ""
    log_path: str = ""
    command_path: str = ""  # the exact command, saved beside the output
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainedLora:
        return _from_dict(cls, data)
