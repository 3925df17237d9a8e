"""CLI for the dataset area: train-init, dataset scan|weights|apply|keywords|recover|add-images|caption
(caption.py).

Same core calls (and the same summary text) as the DatasetSubsetWeights node.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..dataset import prepare, project, rename
from ..dataset import scan as dataset
from ..dataset.add_images import AddSpec, add_images
from ..dataset.add_images import plan as add_plan
from ..dataset.captions import format_keywords
from ..dataset.captions_merge import CAPTION_MODES
from ..dataset.checks import WRONG_SIZE_MODES
from ..dataset.images import rules_in_use
from ..dataset.pictures import FIT_MODES, Picture, check_sizes
from ..dataset.pictures import open_file as open_image
from ..dataset.prepare import DatasetOptions
from ..dataset.repeats import REPEAT_MODES
from ..dataset.weights import format_weights, parse_weights
from ..errors import ValidationError
from ..terminal import echo, shown
from . import caption


def _add_shape(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repeats",
        choices=REPEAT_MODES,
        default=None,
        help="folders: the N_ prefix of each folder as named (no prefix counts as 1); equal: every subset "
        "the same share of an epoch; weights: --weights/--set set the shares "
        "(default: weights when --weights or --set is given, else folders)",
    )
    p.add_argument(
        "--weights",
        default="",
        metavar="FILE_OR_TEXT",
        help="a weights file or text, one `Subject: weight` per line (a subset not named weighs 1)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SUBJECT=WEIGHT",
        help="set one subset's weight (repeatable; wins over --weights)",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=0,
        metavar="N",
        help="max items (images x repeats) per epoch; 0 = the default 10000",
    )
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument(
        "--enable-bucket",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="aspect-ratio buckets: images of any size train as they are, never upscaled (default: on; "
        "--no-enable-bucket: every image must be WIDTHxHEIGHT, see --wrong-size)",
    )
    p.add_argument(
        "--folder-repeats",
        type=int,
        default=1,
        metavar="N",
        help="repeats of a plain folder of images (no images/N_Subject/ folders; read as one subset)",
    )
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3, help="epochs, for the step math (unless --target-steps)")
    p.add_argument(
        "--target-steps",
        type=int,
        default=0,
        metavar="N",
        help="plan by total steps: pick the epochs (and scale the repeats within the budget) so the total "
        "lands closest to N; `lora-workbench train` then trains that many epochs",
    )
    p.add_argument(
        "--wrong-size",
        choices=WRONG_SIZE_MODES,
        default="bucket",
        help="buckets off and an image is not WIDTHxHEIGHT: error, resize (train on resized "
        "copies in PROJECT/cache, originals untouched) or bucket (turn buckets on; the default)",
    )
    p.add_argument(
        "--caption-extension", default=dataset.CAPTION_EXT, help="the caption file beside each image"
    )
    p.add_argument(
        "--missing-caption",
        choices=prepare.MISSING_CAPTION_MODES,
        default="error",
        help="a training image without a caption file: error (default), class_tokens (train it on the "
        "folder's subject, as sd-scripts does) or empty (an empty caption)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train-init",
        help="create a training project's folders (idempotent)",
        description="Create images-unorganized/, regularization-unorganized/, images/, "
        "regularization/, logs/ and output/ in PROJECT.",
    )
    p.add_argument("project")
    p.set_defaults(func=_train_init)

    ds = sub.add_parser(
        "dataset",
        help="scan a project, preview weights, apply repeats",
        description="Dataset preparation for a training project (images/N_Subject/ folders).",
    )
    dsub = ds.add_subparsers(dest="dataset_command", metavar="ACTION")
    dsub.required = True

    p = dsub.add_parser("scan", help="subsets, image counts, captions, sizes, problems and keywords")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--caption-extension", default=dataset.CAPTION_EXT, help="the caption file beside each image"
    )
    p.add_argument("--verify", action="store_true", help="decode every image fully (slow)")
    p.set_defaults(func=_scan)

    p = dsub.add_parser("weights", help="preview the repeats and shares the weights give (changes nothing)")
    p.add_argument("project")
    _add_shape(p)
    p.set_defaults(func=_weights)

    p = dsub.add_parser("apply", help="validate, balance and write dataset.toml (or rename the folders)")
    p.add_argument("project")
    _add_shape(p)
    p.add_argument(
        "--mode",
        choices=("toml", "rename"),
        default="toml",
        help="toml (default): write <project>/dataset.toml, folders untouched; rename: rename the "
        "subset folders to N_Subject too",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and show the result; write nothing")
    p.set_defaults(func=_apply)

    p = dsub.add_parser(
        "keywords", help="distinct caption tags with counts (the seed's sd-train-keywords-list)"
    )
    p.add_argument("project")
    p.add_argument("--reg", action="store_true", help="include regularization captions")
    p.add_argument(
        "--caption-extension", default=dataset.CAPTION_EXT, help="the caption file beside each image"
    )
    p.set_defaults(func=_keywords)

    _add_images_command(dsub)

    p = dsub.add_parser("recover", help="finish (or --rollback) an interrupted folder rename")
    p.add_argument("project")
    p.add_argument("--rollback", action="store_true", help="undo the renames instead of finishing them")
    p.set_defaults(func=_recover)

    caption.add_dataset_command(dsub)


def _add_images_command(dsub) -> None:
    p = dsub.add_parser(
        "add-images",
        help="copy image files into images/N_SUBJECT/ as <content hash>.png with captions (Save Training Images)",
        description="Store image files in PROJECT/images/<repeats>_<subject>/, named by a hash of their "
        "pixels (the same image is one file; running again adds nothing), with a caption file beside each.",
    )
    p.add_argument("project")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--subject", required=True, help="the subset's name (a folder name)")
    p.add_argument("--repeats", type=int, default=1, help="the folder's N_ prefix (default 1)")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--caption", default="", help="one caption for every image")
    text.add_argument("--captions-file", metavar="F", help="a UTF-8 file with one caption line per image")
    p.add_argument("--trigger-word", default="", help="put first in every caption, once")
    p.add_argument("--caption-mode", choices=CAPTION_MODES, default=CAPTION_MODES[0])
    p.add_argument(
        "--fit",
        choices=FIT_MODES,
        default="none",
        help="none, crop or pad to --width x --height (never enlarges)",
    )
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument(
        "--caption-extension", default=dataset.CAPTION_EXT, help="the caption file beside each image"
    )
    p.set_defaults(func=_add_images)


def _add_images(args) -> int:
    captions = args.caption
    if args.captions_file:
        captions = _read_text_file(Path(os.path.expanduser(args.captions_file)), "captions file")
        captions = [line for line in captions.splitlines() if line.strip()]
    spec = AddSpec(
        project_dir=args.project,
        subject=args.subject,
        repeats=args.repeats,
        captions=captions,
        trigger_word=args.trigger_word,
        caption_mode=args.caption_mode,
        fit=args.fit,
        resolution=(args.width, args.height),
        caption_extension=args.caption_extension,
    )
    add_plan(spec, len(args.files))  # a bad subject or caption count stops before any image is read
    check_sizes([(1, 1)] * len(args.files), "files")
    pics = [Picture(open_image(f), None, f) for f in args.files]
    echo(add_images(spec, pics).summary())
    return 0


def weights_text(args) -> str:
    """--weights (a file or text) plus --set overrides, as weights text."""
    text = args.weights or ""
    if text and "\n" not in text and os.path.isfile(os.path.expanduser(text)):
        text = _read_weights_file(Path(os.path.expanduser(text)))
    if not args.set:
        return text
    weights = parse_weights(text)
    for item in args.set:
        if "=" not in item:
            raise ValidationError(f"--set {item!r} is not SUBJECT=WEIGHT (e.g. --set Subject=2).")
        weights.update(parse_weights(item))
    return format_weights(weights)


def _read_weights_file(path: Path) -> str:
    return _read_text_file(path, "weights file")


def _read_text_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"The {what} {path} is not UTF-8 text; save it as UTF-8.") from None
    except OSError as exc:
        raise ValidationError(f"The {what} {path} cannot be read ({exc.strerror}).") from None


def options(args):
    """The DatasetOptions the flags ask for (the node builds the same object from its widgets)."""
    text = weights_text(args)
    repeats = args.repeats or ("weights" if (args.weights or args.set) else "folders")
    return DatasetOptions(
        weights_text=text,
        resolution=(args.width, args.height),
        enable_bucket=args.enable_bucket,
        batch_size=args.batch_size,
        epochs=args.epochs,
        max_items_per_epoch=_budget(args),
        repeats=repeats,
        target_steps=args.target_steps,
        wrong_size=args.wrong_size,
        caption_extension=args.caption_extension,
        folder_repeats=args.folder_repeats,
        missing_caption=args.missing_caption,
    )


def _train_init(args) -> int:
    made = project.init_project(args.project)
    echo(f"{len(made)} folders created in {Path(args.project).expanduser()}")
    for p in made:
        echo(f"  {p.name}/")
    return 0


def _scan(args) -> int:
    scan = dataset.scan_project(
        args.project, verify=args.verify, caption_extension=args.caption_extension, rules=rules_in_use()
    )
    kws = dataset.caption_keywords(scan)
    if args.json:
        d = scan.to_dict()
        d["keywords"] = [[k, n] for k, n in kws]
        echo(json.dumps(d, indent=2))
        return 0
    echo(f"Project {shown(scan.project_dir)}")
    for s in scan.subsets:
        _print_subset(s)
    for top in scan.missing_folders:
        echo(f"  no {top}/ folder")
    if scan.loose_images:
        echo(f"  {len(scan.loose_images)} image(s) directly in images/ (not trained)")
    for note in scan.followed_links:
        echo(f"  {note}")
    echo(f"Keywords ({len(kws)} distinct): " + (format_keywords(kws) if kws else "none"))
    return 0


def _print_subset(s) -> None:
    kind = "reg " if s.is_reg else ""
    reps = "no N_ prefix" if s.repeats is None else f"repeats {s.repeats}"
    sizes = ", ".join(f"{k} x{n}" for k, n in list(s.size_counts().items())[:4]) or "-"
    echo(f"  {kind}{shown(s.dirname)}: {_media(s)}, {s.captions} captions, {reps}; sizes {sizes}")
    if s.control_dir:
        echo(
            f"    control images: {len(s.controls)} in {shown(s.control_dir)}, {len(s.without_control)} image(s) without one"
        )
    for name, v in list(s.video_info.items())[:5]:
        echo(f"    {shown(name)}: {v.frames} frames, {v.fps:g} fps, {v.width}x{v.height}, {v.duration:g} s")
    if len(s.video_info) > 5:
        echo(f"    ... and {len(s.video_info) - 5} more video(s)")
    for label, names in (
        ("missing captions", s.missing_captions),
        ("empty captions", s.empty_captions),
        ("not read by sd-scripts", sorted(s.skipped)),
    ):
        if names:
            echo(f"    {label}: {len(names)} (e.g. {shown(names[0])})")
    for name, why in list(s.corrupt.items())[:5]:
        echo(f"    unreadable: {shown(name)} ({shown(why)})")


def _media(s) -> str:
    """`12 images`, `3 videos (33-81 frames)`, or both for a mixed folder."""
    parts = [f"{s.image_count} images"] if s.images or not s.videos else []
    if s.videos:
        low, high = s.frame_range()
        frames = f" ({low}-{high} frames)" if high else ""
        parts.append(f"{s.video_count} videos{frames}")
    return ", ".join(parts)


def _budget(args):
    return args.budget if args.budget and args.budget > 0 else None


def _weights(args) -> int:
    report = prepare.preview(args.project, options(args))
    if args.json:
        echo(json.dumps(report, indent=2))
    else:
        echo(report["summary"])
        echo("\nWeights:\n" + report["weights_text"], end="")
    return 0 if report["ok"] else 1


def _apply(args) -> int:
    ds, text = prepare.prepare_dataset(
        args.project, options(args), apply_mode=args.mode, dry_run=args.dry_run
    )
    if args.json:
        echo(json.dumps({"dataset": ds.to_dict(), "summary": text}, indent=2))
    else:
        echo(text)
    return 0


def _keywords(args) -> int:
    scan = dataset.scan_project(args.project, caption_extension=args.caption_extension)
    for tag, n in dataset.caption_keywords(scan, include_reg=args.reg):
        echo(f"{n:6d}  {shown(tag)}")
    return 0


def _recover(args) -> int:
    report = rename.recover(Path(args.project).expanduser(), "rollback" if args.rollback else "finish")
    echo(report.to_text() if report.found else "No interrupted rename to recover.")
    return 0
