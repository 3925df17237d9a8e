"""What musubi-tuner cuts out of each video, and the videos too short for the frames the settings ask for.

musubi-tuner (dataset/image_video_dataset.py `VideoDataset`, docs/dataset_config.md) rounds each
`target_frames` entry down to N*4+1, then per video of F frames extracts:
- head: the first T frames, for each T <= F;
- chunk: F // T back-to-back clips of T frames, for each T;
- slide: clips of T frames every `frame_stride` frames, for each T <= F;
- uniform: `frame_sample` clips of T frames spread evenly, for each T <= F;
- full: one clip of min(F, max_frames) frames rounded down to N*4+1.
A clip longer than the video is skipped without a word, so a short video trains less than asked, or
nothing. These functions take the numbers (frames per video, the settings) and answer in sentences;
the training plan calls `check_video_frames` with the trainer's options, the dataset node never
needs them. `source_fps` (musubi resamples the frames first) is not modelled: the header's frames count.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ValidationError

EXTRACTIONS = ("head", "chunk", "slide", "uniform", "full")
VAE_FRAME_STRIDE = 4  # Wan, HunyuanVideo and FramePack: target_frames are N*4+1
MAX_LISTED = 10


@dataclass(frozen=True)
class FramePlan:
    """musubi-tuner's video options with its defaults (config_utils.VideoDatasetParams at 30c658c4)."""

    target_frames: tuple[int, ...] = (1,)
    frame_extraction: str = "head"
    frame_stride: int = 1
    frame_sample: int = 1
    max_frames: int = 129
    vae_frame_stride: int = VAE_FRAME_STRIDE

    def rounded(self) -> tuple[int, ...]:
        """The target frames as musubi-tuner uses them: each rounded down to N*stride+1, sorted, once."""
        s = self.vae_frame_stride
        return tuple(sorted({(int(f) - 1) // s * s + 1 for f in self.target_frames if int(f) >= 1}))


def frame_plan(opts: object) -> FramePlan:
    """The FramePlan of a trainer's options (any object; a setting it lacks keeps musubi's default)."""
    d = FramePlan()
    targets = getattr(opts, "target_frames", d.target_frames)
    if isinstance(targets, str):
        targets = tuple(int(t) for t in targets.replace(",", " ").split())
    return FramePlan(
        tuple(int(t) for t in (targets or d.target_frames)),
        str(getattr(opts, "frame_extraction", d.frame_extraction) or d.frame_extraction),
        int(getattr(opts, "frame_stride", d.frame_stride) or d.frame_stride),
        int(getattr(opts, "frame_sample", d.frame_sample) or d.frame_sample),
        int(getattr(opts, "max_frames", d.max_frames) or d.max_frames),
        int(getattr(opts, "vae_frame_stride", d.vae_frame_stride) or d.vae_frame_stride),
    )


def clips(frames: int, plan: FramePlan) -> list[int]:
    """The clip lengths musubi-tuner extracts from a video of `frames` frames (one entry per clip)."""
    how = plan.frame_extraction
    if how not in EXTRACTIONS:
        raise ValidationError(
            f"frame_extraction {how!r} is not one of musubi-tuner's: {', '.join(EXTRACTIONS)}."
        )
    if how == "full":
        s = plan.vae_frame_stride
        n = min(frames, plan.max_frames)
        return [(n - 1) // s * s + 1] if n >= 1 else []
    out: list[int] = []
    for t in plan.rounded():
        if how == "chunk":
            out += [t] * (frames // t)
        elif frames >= t:
            many = {"head": 1, "slide": len(range(0, frames - t + 1, max(1, plan.frame_stride)))}
            out += [t] * many.get(how, plan.frame_sample)
    return out


def clip_count(video_frames: dict[str, int], plan: FramePlan) -> int:
    """Clips per epoch before repeats: what musubi-tuner counts as items (the dataset's step math
    counts each video once, as it knows no settings)."""
    return sum(len(clips(f, plan)) for f in video_frames.values())


def _shortest_fit(frames: int, stride: int) -> int:
    return max(1, (frames - 1) // stride * stride + 1)


def short_videos(subset: str, video_frames: dict[str, int], plan: FramePlan) -> tuple[list[str], list[str]]:
    """(errors, warnings): videos that give no clip at all, and videos that skip some target lengths."""
    targets = plan.rounded()
    if plan.frame_extraction == "full" or not targets:
        return [], []
    errors, warnings = [], []
    for name, frames in sorted(video_frames.items()):
        got = set(clips(frames, plan))
        fit = _shortest_fit(frames, plan.vae_frame_stride)
        if not got:
            errors.append(
                f"{subset}/{name} has {frames} frames, fewer than the {targets[0]} that target_frames "
                f"{list(targets)} asks for (frame_extraction {plan.frame_extraction}), so it trains nothing: "
                f"lower target_frames to at most {fit}, set frame_extraction to full, or replace it with a "
                f"longer video."
            )
        elif missing := [t for t in targets if t not in got]:
            warnings.append(
                f"{subset}/{name} has {frames} frames, so its {', '.join(map(str, missing))}-frame clip(s) of "
                f"target_frames {list(targets)} are skipped (it trains the {', '.join(map(str, sorted(got)))}"
                f"-frame ones); lower target_frames to at most {fit} or use a longer video to train them."
            )
    return _capped(errors, subset), _capped(warnings, subset)


def _capped(found: list[str], subset: str) -> list[str]:
    if len(found) <= MAX_LISTED:
        return found
    return found[:MAX_LISTED] + [f"... and {len(found) - MAX_LISTED} more like that in {subset}."]


def check_video_frames(subsets, opts: object) -> list[str]:
    """Every video subset's videos against the trainer's frame settings: a video that trains nothing
    raises ValidationError (all of them named); ones that skip some lengths come back as warnings.
    `subsets` are DatasetSubset objects (kind, name, video_frames)."""
    plan = frame_plan(opts)
    errors: list[str] = []
    warnings: list[str] = []
    for s in subsets:
        if getattr(s, "kind", "image") == "video":
            e, w = short_videos(s.name, dict(s.video_frames), plan)
            errors += e
            warnings += w
    if errors:
        raise ValidationError(
            f"{len(errors)} video(s) are too short for the frame settings:\n"
            + "\n".join(f"- {e}" for e in errors)
        )
    return warnings


def refuse_videos(subsets, takes_video: bool, model: str) -> None:
    """A dataset with video subsets for a model that trains on images is a sentence, before anything runs.

    `takes_video` is the family's recipe data (musubi-tuner's Wan, HunyuanVideo and FramePack recipes
    say True); `model` is what the user knows the family as (e.g. "SDXL")."""
    found = [s.name for s in subsets if getattr(s, "kind", "image") == "video"]
    if found and not takes_video:
        raise ValidationError(
            f"The dataset has video subset(s) {', '.join(repr(n) for n in found)}, but {model} trains on "
            f"images: videos train with Wan/HunyuanVideo/FramePack through musubi-tuner. Pick one of those "
            f"models, or move the videos out of the project's subsets."
        )
