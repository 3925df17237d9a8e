"""Judge a scan: errors that would make training fail or read outside the roots, warnings for surprises.

Each check is one function that appends `Issue`s; `validate` runs them in order. Errors stop
`prepare_dataset` before anything is changed; the preview lists them all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from . import images, videos
from .dataset_toml import BUCKET_STEP
from .repeats import FOLDERS, WEIGHTS
from .scan import CONTROL_DIR, REG_DIR, TRAIN_DIR, ProjectScan, SubsetScan, is_utf8
from .weights import subject_key

MAX_LISTED = 20  # per-file messages shown per kind and subset before "... and N more"
WRONG_SIZE_MODES = ("error", "resize", "bucket")


@dataclass
class Issue:
    severity: str  # "error" | "warning"
    path: str
    message: str
    code: str = ""  # what kind of problem, for tests and tools (e.g. "caption-missing")

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class CheckInput:
    """What the checks judge besides the scan."""

    resolution: tuple[int, int]
    enable_bucket: bool
    mode: str = FOLDERS
    weights: dict[str, float] = field(default_factory=dict)  # parsed weights text (weights mode)
    weights_text: str = ""
    excluded: set[str] = field(default_factory=set)  # training subsets left out (0 repeats / weight 0)
    wrong_size: str = "error"
    cache_dir: str = ""  # where resized copies go (wrong_size "resize")
    missing_caption: str = "error"  # error | class_tokens | empty (prepare.MISSING_CAPTION_MODES)


def validate(scan: ProjectScan, ci: CheckInput) -> list[Issue]:
    """Every issue of the scan, project-wide checks first, then subset by subset."""
    out: list[Issue] = []
    for check in (_resolution, _layout, _links, _names, _weights, _anything_to_train):
        check(scan, ci, out)
    for s in scan.subsets:
        _subset(s, scan, ci, out)
    return out


# --------------------------------------------------------------------------- project-wide
def _resolution(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    w, h = ci.resolution
    if w < 64 or h < 64:
        out.append(
            Issue(
                "error",
                scan.project_dir,
                f"The resolution {w}x{h} is too small; use at least 64x64.",
                "resolution",
            )
        )


def _layout(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    train_dir = os.path.join(scan.project_dir, TRAIN_DIR)
    if TRAIN_DIR in scan.missing_folders:
        out.append(
            Issue(
                "error",
                train_dir,
                f"The project folder {scan.project_dir} holds no images; put your images (with captions "
                f"beside them, optional) right in it, or each subject's in {TRAIN_DIR}/N_Subject/ folders.",
                "layout",
            )
        )
    elif not scan.train:
        out.append(
            Issue(
                "error",
                train_dir,
                f"{TRAIN_DIR}/ has no subset folders and no images; put your images right in {TRAIN_DIR}/ "
                f"(one subset) or each subject's in {TRAIN_DIR}/N_Subject/ (e.g. {TRAIN_DIR}/1_Subject).",
                "layout",
            )
        )
    if scan.loose_images:
        out.append(
            Issue(
                "warning",
                train_dir,
                f"{len(scan.loose_images)} image(s) lie directly in {TRAIN_DIR}/ (e.g. {scan.loose_images[0]}) "
                f"and are not trained; move them into a subset folder.",
                "loose-images",
            )
        )


def _links(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    for path, why in scan.refused:
        out.append(
            Issue(
                "error",
                path,
                f"{path} is {why}; it is not read. Move the files into the project instead.",
                "link-outside",
            )
        )
    for path in scan.broken_links:
        out.append(Issue("warning", path, f"{path} is a broken link; it is skipped.", "broken-link"))
    for note in scan.followed_links:
        out.append(Issue("warning", scan.project_dir, note, "link-followed"))


def _names(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    if not is_utf8(scan.project_dir):
        out.append(
            Issue(
                "error",
                scan.project_dir,
                f"The project path {scan.project_dir!r} is not valid UTF-8, so the dataset config cannot name it; rename the folder.",
                "name-encoding",
            )
        )
    for s in scan.subsets:
        if not is_utf8(s.dirname):
            top = REG_DIR if s.is_reg else TRAIN_DIR
            out.append(
                Issue(
                    "error",
                    s.folder,
                    f"The folder name {top}/{s.dirname!r} is not valid UTF-8, so the dataset config cannot name it; rename the folder.",
                    "name-encoding",
                )
            )
    by_key: dict[str, list[str]] = {}
    for s in scan.train:
        by_key.setdefault(subject_key(s.name), []).append(s.dirname)
    for key, dirs in by_key.items():
        if len(dirs) > 1:
            out.append(
                Issue(
                    "error",
                    os.path.join(scan.project_dir, TRAIN_DIR),
                    f"The subsets {', '.join(repr(d) for d in dirs)} share the subject name {key!r}; rename one so "
                    f"each weight and trigger word names one subset.",
                    "duplicate-subject",
                )
            )


def _weights(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    if ci.mode != WEIGHTS:
        if ci.weights_text.strip():
            out.append(
                Issue(
                    "warning",
                    scan.project_dir,
                    f"The weights text is not used: repeats are set by {'the folder names' if ci.mode == FOLDERS else 'equal shares'} "
                    f"(repeats = {ci.mode}); choose repeats = weights to use it.",
                    "weights-unused",
                )
            )
        return
    known = {subject_key(s.name) for s in scan.train}
    for key in ci.weights:
        if key not in known:
            out.append(
                Issue(
                    "error",
                    scan.project_dir,
                    f"The weights name {key!r}, which is no subset of {TRAIN_DIR}/ (subsets: "
                    f"{', '.join(sorted(known)) or 'none'}); fix the name or remove the line.",
                    "weights-unknown",
                )
            )


def _anything_to_train(scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    if scan.train and not any(
        s.item_count > 0 and s.name not in ci.excluded and not s.error for s in scan.train
    ):
        out.append(
            Issue(
                "error",
                os.path.join(scan.project_dir, TRAIN_DIR),
                "No subset has both images and repeats above 0, so there is nothing to train.",
                "nothing-to-train",
            )
        )


# --------------------------------------------------------------------------- per subset
def _subset(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    kind = "regularization subset" if s.is_reg else "subset"
    if s.error:
        out.append(
            Issue(
                "error",
                s.folder,
                f"The {kind} folder {s.dirname} cannot be read ({s.error}).",
                "folder-unreadable",
            )
        )
        return
    _prefix(s, kind, ci, out)
    if s.item_count == 0 and not (s.refused or s.not_files):
        out.append(
            Issue(
                "warning",
                s.folder,
                f"The {kind} {s.dirname} has no images ({', '.join(images.IMAGE_EXTS)}) and no videos "
                f"({', '.join(videos.VIDEO_EXTS)}); it is skipped.",
                "no-images",
            )
        )
        _skipped(s, scan, ci, out)
        return
    if not s.is_reg and s.name in ci.excluded:
        return
    for check in (_mixed, _files, _skipped, _unmeasured, _captions, _sizes, _controls):
        check(s, scan, ci, out)


def _prefix(s: SubsetScan, kind: str, ci: CheckInput, out: list[Issue]) -> None:
    if s.repeats is None:
        counted = "counts as 1 repeat" if ci.mode == FOLDERS or s.is_reg else "is balanced like the others"
        out.append(
            Issue(
                "warning",
                s.folder,
                f"The {kind} folder {s.dirname!r} has no `N_` repeats prefix; it {counted} (kohya's own folder "
                f"scan would skip it).",
                "no-prefix",
            )
        )
    elif s.repeats == 0 and not s.is_reg and s.name in ci.excluded and s.item_count:
        how = (
            "give it a weight (repeats = weights)"
            if ci.mode != WEIGHTS
            else f"give `{subject_key(s.name)}` a weight"
        )
        out.append(
            Issue(
                "warning",
                s.folder,
                f"The subset {s.dirname} has 0 repeats in its name, so it is left out; {how} or rename it to train it.",
                "zero-prefix",
            )
        )


def _listed(
    s: SubsetScan, names, severity: str, code: str, make: Callable[[str], str], out: list[Issue]
) -> None:
    names = list(names)
    for n in names[:MAX_LISTED]:
        out.append(Issue(severity, os.path.join(s.folder, n), make(n), code))
    if len(names) > MAX_LISTED:
        out.append(
            Issue(
                severity, s.folder, f"... and {len(names) - MAX_LISTED} more like that in {s.dirname}.", code
            )
        )


def _files(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    d = s.dirname
    _listed(
        s,
        sorted(s.corrupt),
        "error",
        "image-unreadable",
        lambda n: f"{d}/{n} cannot be read as {_what(n)} ({s.corrupt[n]}); replace or remove it.",
        out,
    )
    _listed(
        s,
        sorted(s.refused),
        "error",
        "link-outside",
        lambda n: f"{d}/{n} is {s.refused[n]}; it is not read. Copy the {_noun(n)} into the project.",
        out,
    )
    _listed(
        s,
        sorted(s.not_files),
        "error",
        "not-a-file",
        lambda n: (
            f"{d}/{n} is {s.not_files[n]}, but the trainer would try to load it as {_what(n)}; rename or remove it."
        ),
        out,
    )


def _controls(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    """A control/ folder (image pairs): its images that match no training image, and the training
    images it has no reference image for. Neither stops the scan (a single-image model ignores the
    folder); a model that learns from pairs refuses the subset when planning its run."""
    if not s.control_dir:
        return
    d = f"{s.dirname}/{CONTROL_DIR}"
    if s.without_control:
        first = s.without_control[0]
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(s.without_control)} training image(s) of {s.dirname} have no control image in {d} "
                f"(e.g. {first}: add {d}/{os.path.splitext(first)[0]}.png); a model that learns from image "
                f"pairs (FLUX.1 Kontext, Qwen-Image-Edit) needs one for each.",
                "control-missing",
            )
        )
    _listed(
        s,
        s.unmatched_controls,
        "warning",
        "control-unmatched",
        lambda n: (
            f"{d}/{n} matches no training image of {s.dirname} (a control image takes its image's name, or "
            f"the name and _0, _1...); it is not used. Rename or remove it."
        ),
        out,
    )
    _listed(
        s,
        s.odd_controls,
        "warning",
        "control-misnamed",
        lambda n: (
            f"{d}/{n} continues a training image's name with something other than a number after '_'; "
            f"musubi-tuner stops on it when reading image pairs. Rename it to <name>_0, <name>_1..."
        ),
        out,
    )


def _noun(name: str) -> str:
    return "video" if videos.classify(name) is not None else "image"


def _what(name: str) -> str:
    return "a video" if _noun(name) == "video" else "an image"


def _mixed(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    """musubi-tuner reads a dataset entry's folder as images or as videos, never both, and both
    trainers then read the images only: a stray clip must not block a photo dataset, but the user
    hears that it is not trained, and who knows which belong together moves it."""
    if s.mixed:
        out.append(
            Issue(
                "warning",
                s.folder,
                f"The subset {s.dirname} holds {s.image_count} image(s) and {s.video_count} video(s) (e.g. "
                f"{s.videos[0]}); a subset trains images or videos, not both, so its videos are not trained: "
                f"move them into a subset folder of their own (e.g. {s.dirname}_video beside it).",
                "mixed-media",
            )
        )


def _unmeasured(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    if s.unmeasured:
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(s.unmeasured)} video(s) in {s.dirname} (e.g. {s.unmeasured[0]}) are in a container "
                f"whose length the pack cannot read, so their frames are not checked; convert them to "
                f"{', '.join(videos.VIDEO_EXTS)} to have them checked.",
                "video-unmeasured",
            )
        )


_SKIP_WHY = {
    images.HIDDEN: "its name starts with a dot, so sd-scripts skips it",
    images.WRONG_CASE: "sd-scripts only reads extensions in all lower or all upper case here, so it skips it",
    images.PLUGIN: "sd-scripts reads it only when its environment has the pillow_avif / pillow_jxl plugin",
}


def _skipped(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    def why(n: str) -> str:
        base, ext = os.path.splitext(n)
        fix = (
            f"rename it to {base.lstrip('.')}{ext.lower()}"
            if s.skipped[n] != images.PLUGIN
            else "convert it to PNG"
        )
        why = _SKIP_WHY[s.skipped[n]]
        if videos.classify(n) is not None:
            why = why.replace("sd-scripts", "musubi-tuner")
        return f"{s.dirname}/{n} is not trained: {why}; {fix} to train it."

    _listed(s, sorted(s.skipped), "warning", "image-skipped", why, out)


def _captions(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    """Missing captions (an error for training images, the class token for regularization ones),
    then captions sd-scripts cannot use, then the surprising ones."""
    d, ext = s.dirname, scan.caption_extension

    def add(n: str) -> str:
        return (
            f"{d}/{n} has no caption: add {os.path.splitext(n)[0]}{ext} beside it, or set missing_caption "
            f"to class_tokens or empty."
        )

    def empty(n: str) -> str:
        return (
            f"{d}/{n} is empty or has no text on its first line, which is the caption sd-scripts trains; "
            f"write the caption or delete the file."
        )

    def video_caption(n: str) -> str:
        return f"{d}/{n} has no caption: add {os.path.splitext(n)[0]}{ext} beside it (musubi-tuner needs one per video)."

    def bad(n: str) -> str:
        return f"{d}/{n} cannot be used as a caption ({s.bad_captions[n]}); save it as UTF-8 text in the project."

    if s.kind == "video":  # musubi-tuner opens every video's caption: a missing one stops it
        _listed(s, s.missing_captions, "error", "caption-missing", video_caption, out)
    elif s.is_reg and s.missing_captions:
        why = f"have no caption; the class token {s.name!r} is used for them"
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(s.missing_captions)} regularization image(s) in {d} {why}.",
                "caption-missing",
            )
        )
    elif s.missing_captions and ci.missing_caption != "error":
        out.append(Issue("warning", s.folder, _fallback(s, ci.missing_caption), "caption-missing"))
    elif s.flat and s.missing_captions:  # sd-scripts trains them on the class token: the folder's name
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(s.missing_captions)} image(s) in {d} have no caption (e.g. {s.missing_captions[0]}); "
                f"they train with the folder's name {s.name!r} as their caption. Add a {ext} file beside "
                f"an image to caption it.",
                "caption-missing",
            )
        )
    elif s.missing_captions:
        _listed(s, s.missing_captions, "error", "caption-missing", add, out)
    _listed(s, s.empty_captions, "error", "caption-empty", empty, out)
    _listed(s, sorted(s.bad_captions), "error", "caption-unreadable", bad, out)
    _surprising_captions(s, out)


def _fallback(s: SubsetScan, mode: str) -> str:
    what = f"the class tokens {s.name.strip()!r}" if mode == "class_tokens" else "an empty caption"
    return (
        f"{len(s.missing_captions)} image(s) in {s.dirname} have no caption (e.g. {s.missing_captions[0]}); "
        f"they train on {what} (missing_caption = {mode})."
    )


def _surprising_captions(s: SubsetScan, out: list[Issue]) -> None:
    d = s.dirname
    if s.multiline_captions:
        what = (
            f"have more than one line (e.g. {s.multiline_captions[0]}); sd-scripts trains only the first line"
        )
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(s.multiline_captions)} caption(s) in {d} {what}.",
                "caption-multiline",
            )
        )
    if s.bom_captions:
        what = (
            f"start with a byte-order mark (e.g. {s.bom_captions[0]}), which sd-scripts keeps as part of the "
            f"caption; save them as UTF-8 without BOM"
        )
        out.append(
            Issue("warning", s.folder, f"{len(s.bom_captions)} caption(s) in {d} {what}.", "caption-bom")
        )


def _sizes(s: SubsetScan, scan: ProjectScan, ci: CheckInput, out: list[Issue]) -> None:
    w_res, h_res = ci.resolution
    d = s.dirname
    if not ci.enable_bucket:
        bad = [n for n, wh in s.sizes.items() if wh != (w_res, h_res)]
        if ci.wrong_size == "error":
            _listed(
                s,
                bad,
                "error",
                "size",
                lambda n: (
                    f"{d}/{n} is {s.sizes[n][0]}x{s.sizes[n][1]}, not the training resolution {w_res}x{h_res}: "
                    f"resize it, or set wrong_size to `resize` (trains on resized copies in the project's cache, the "
                    f"originals stay as they are) or to `bucket` (turns aspect-ratio buckets on)."
                ),
                out,
            )
        elif bad:
            out.append(
                Issue(
                    "warning",
                    s.folder,
                    f"{len(bad)} image(s) in {d} are not {w_res}x{h_res} (e.g. {bad[0]}); training uses resized, center-cropped copies in {ci.cache_dir or 'the cache'}, the originals stay as they are.",
                    "size-resized",
                )
            )
        return
    _bucket_sizes(s, ci, out)


def _bucket_sizes(s: SubsetScan, ci: CheckInput, out: list[Issue]) -> None:
    """Buckets never upscale (bucket_no_upscale): a small image trains at its own size, said once per
    subset; a side under one bucket step would make sd-scripts' bucket 0 pixels wide, an error."""
    w_res, h_res = ci.resolution
    d, step = s.dirname, BUCKET_STEP
    tiny = sorted(n for n, (w, h) in s.sizes.items() if w < step or h < step)
    _listed(
        s,
        tiny,
        "error",
        "size-tiny",
        lambda n: (
            f"{d}/{n} is {s.sizes[n][0]}x{s.sizes[n][1]}; buckets need at least {step} pixels on each side "
            f"(images are never upscaled): remove it or replace it with a larger image."
        ),
        out,
    )
    area = w_res * h_res
    thin = sorted(
        n for n, (w, h) in s.sizes.items() if n not in tiny and no_upscale_bucket(w, h, area, step) is None
    )
    _listed(
        s,
        thin,
        "error",
        "size-thin",
        lambda n: (
            f"{d}/{n} is {s.sizes[n][0]}x{s.sizes[n][1]}: scaled down to the {w_res}x{h_res} area, one side "
            f"would be under {step} pixels, a 0-pixel bucket that stops sd-scripts; train at a larger "
            f"resolution, or crop the image closer to square."
        ),
        out,
    )
    tiny += thin
    small = sorted(n for n, (w, h) in s.sizes.items() if w * h < w_res * h_res and n not in tiny)
    if small:
        out.append(
            Issue(
                "warning",
                s.folder,
                f"{len(small)} image(s) in {d} are smaller than {w_res}x{h_res} (e.g. {small[0]} is "
                f"{s.sizes[small[0]][0]}x{s.sizes[small[0]][1]}); they train at their own size, never "
                f"upscaled, so they carry less detail than the others.",
                "size-small",
            )
        )


def no_upscale_bucket(width: int, height: int, max_area: int, steps: int) -> tuple[int, int] | None:
    """The bucket sd-scripts gives an image with bucket_no_upscale (BucketManager.select_bucket at
    48d368fa, step for step), or None where it would be 0 pixels on a side (sd-scripts then divides by
    zero while it makes the dataset): a long, thin image scaled down to a small training area."""

    def to_steps(x: float) -> int:
        x = int(x + 0.5)
        return x - x % steps

    aspect = width / height
    if width * height > max_area:
        resized_w = math.sqrt(max_area * aspect)
        resized_h = max_area / resized_w
        w_rounded, h_rounded = to_steps(resized_w), to_steps(resized_h)
        h_in_w, w_in_h = to_steps(w_rounded / aspect), to_steps(h_rounded * aspect)
        if not (h_in_w and h_rounded):
            return None
        if abs(w_rounded / h_in_w - aspect) < abs(w_in_h / h_rounded - aspect):
            size = (w_rounded, int(w_rounded / aspect + 0.5))
        else:
            size = (int(h_rounded * aspect + 0.5), h_rounded)
    else:
        size = (width, height)
    bucket = (size[0] - size[0] % steps, size[1] - size[1] % steps)
    return bucket if all(bucket) else None
