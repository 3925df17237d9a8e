"""Dataset preparation end to end: scan -> repeats -> checks -> step plan -> apply.

`analyse` is the one pass both entry points share: `preview` reports it (never raising for dataset
problems; the web editor shows it) and `prepare_dataset` applies it: it writes kohya's dataset TOML
(or renames the folders, journaled), makes resized copies when asked, and returns the `LoraDataset`
the training node consumes, with the step plan the trainer must follow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..datatypes import DatasetSubset, LoraDataset
from ..errors import ValidationError, WorkbenchError
from . import balance, dataset_toml, fingerprint, limits, project, rename, report, resize_cache, steps
from .checks import WRONG_SIZE_MODES, CheckInput, Issue, validate
from .confined import Guard
from .images import ImageRules, rules_in_use
from .repeats import FOLDERS, REPEAT_MODES, WEIGHTS, RepeatsPlan, plan_repeats, resolve_mode, scaled
from .scan import CAPTION_EXT, ProjectScan, SubsetScan, caption_keywords, open_project, scan_project
from .weights import parse_weights

TOML_NAME = "dataset.toml"
# A training image without a caption file: stop (error), train on the folder's class tokens (what
# sd-scripts does when the subset has class_tokens), or train an empty caption (no class_tokens).
MISSING_CAPTION_MODES = ("error", "class_tokens", "empty")
APPLY_MODES = ("toml", "rename")


@dataclass
class DatasetOptions:
    """What the node's widgets and the CLI's flags ask for (one object, checked once)."""

    weights_text: str = ""
    resolution: tuple[int, int] = (512, 512)
    # Buckets on by default: a folder of phone photos (mixed sizes and shapes) trains as it is, each
    # image at its own aspect ratio and never upscaled (dataset_toml writes bucket_no_upscale).
    enable_bucket: bool = True
    batch_size: int = 1
    epochs: int = 1  # for the step math; a target_steps plan chooses its own
    max_items_per_epoch: int | None = None  # the step budget for balancing (None: the default)
    repeats: str | None = None  # folders | equal | weights; None: weights if typed in, else folders
    target_steps: int = 0  # 0: no plan
    wrong_size: str = "bucket"  # error | resize | bucket (buckets off, an image not at the resolution)
    caption_extension: str = CAPTION_EXT
    folder_repeats: int = 1  # a plain folder of images (no N_Subject folders): its repeats
    # sd-scripts' caption/augmentation keys written into every subset (shuffle_caption, keep_tokens,
    # flip_aug, ...): the node's caption_options input, made sd-scripts' keys by the training area
    subset_options: dict = field(default_factory=dict)
    missing_caption: str = "error"  # one of MISSING_CAPTION_MODES

    def checked(self) -> DatasetOptions:
        """A copy with normalised values; ValidationError names a bad one."""
        _check_subset_options(self.subset_options)
        if self.repeats not in (None, "", *REPEAT_MODES):
            raise ValidationError(f"repeats must be one of {', '.join(REPEAT_MODES)}, not {self.repeats!r}.")
        if self.wrong_size not in WRONG_SIZE_MODES:
            raise ValidationError(
                f"wrong_size must be one of {', '.join(WRONG_SIZE_MODES)}, not {self.wrong_size!r}."
            )
        if self.missing_caption not in MISSING_CAPTION_MODES:
            raise ValidationError(
                f"missing_caption must be one of {', '.join(MISSING_CAPTION_MODES)}, not {self.missing_caption!r}."
            )
        ext = str(self.caption_extension or "")
        if not ext.startswith(".") or len(ext) > 32 or any(c in ext for c in "/\\\0\n\r") or ext == ".":
            raise ValidationError(f"The caption extension {ext!r} must look like .txt or .caption.")
        numbers = {
            name: limits.check(name, value)
            for name, value in (
                ("width", self.resolution[0]),
                ("height", self.resolution[1]),
                ("batch_size", self.batch_size),
                ("epochs", self.epochs),
                ("max_items_per_epoch", self.max_items_per_epoch or 0),
                ("target_steps", self.target_steps),
                ("folder_repeats", self.folder_repeats),
            )
        }
        return replace(
            self,
            weights_text=self.weights_text or "",
            resolution=(numbers["width"], numbers["height"]),
            enable_bucket=bool(self.enable_bucket),
            batch_size=numbers["batch_size"],
            epochs=numbers["epochs"],
            max_items_per_epoch=numbers["max_items_per_epoch"] or None,
            target_steps=numbers["target_steps"],
            folder_repeats=numbers["folder_repeats"],
            caption_extension=ext,
            subset_options=dict(self.subset_options or {}),
        )


# The subset keys the pack sets itself: caption options may not replace them.
_OWN_SUBSET_KEYS = frozenset({"image_dir", "num_repeats", "class_tokens", "caption_extension", "is_reg"})


def _check_subset_options(options) -> None:
    for key in options or {}:
        if not isinstance(key, str) or not key.isidentifier() or key in _OWN_SUBSET_KEYS:
            raise ValidationError(
                f"{key!r} cannot be set per subset from the caption options: the dataset node sets "
                f"image_dir, num_repeats, class_tokens, caption_extension and is_reg itself."
            )


@dataclass
class Analysis:
    scan: ProjectScan
    options: DatasetOptions
    mode: str
    plan: RepeatsPlan
    enable_bucket: bool  # after wrong_size "bucket"
    issues: list[Issue]
    subsets: list[DatasetSubset]  # what goes into the TOML, training first
    steps: steps.StepPlan
    keywords: list[tuple[str, int]]
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


# --------------------------------------------------------------------------- analysis
def analyse(
    project_dir: str | os.PathLike,
    options: DatasetOptions,
    *,
    guard: Guard | None = None,
    rules: ImageRules | None = None,
    check_cancel: resize_cache.CancelCheck = None,
) -> Analysis:
    """Scan, choose repeats, check, plan the steps; dataset problems become issues, never exceptions
    (`check_cancel`: called before each file of the scan; what it raises stops it)."""
    opts = options.checked()
    guard = guard or Guard()
    scan = scan_project(
        project_dir,
        caption_extension=opts.caption_extension,
        guard=guard,
        rules=rules or rules_in_use(),
        check_cancel=check_cancel,
    )
    for s in scan.train:
        if s.flat:  # a plain folder has no N_ prefix: the folder_repeats option is its prefix
            s.repeats = opts.folder_repeats
    mode = resolve_mode(opts.repeats, opts.weights_text)
    issues: list[Issue] = []
    plan, weights = _repeats(scan, mode, opts, issues)
    bucket = opts.enable_bucket or (opts.wrong_size == "bucket" and _any_wrong_size(scan, opts.resolution))
    ci = CheckInput(
        opts.resolution,
        bucket,
        mode,
        weights,
        opts.weights_text,
        _excluded(scan, plan),
        opts.wrong_size,
        resize_cache.cache_path(scan.project_dir, opts.resolution),
        opts.missing_caption,
    )
    issues += validate(scan, ci)
    notes = []
    if bucket and not opts.enable_bucket:
        notes.append("Buckets turned on (wrong_size = bucket): some images are not the training resolution.")
    plan, step_plan = _plan_steps(scan, plan, opts)
    issues += _plan_beyond_the_trainer(scan, step_plan)
    subsets = _dataset_subsets(scan, plan)
    return Analysis(scan, opts, mode, plan, bucket, issues, subsets, step_plan, caption_keywords(scan), notes)


def _plan_beyond_the_trainer(scan: ProjectScan, plan: steps.StepPlan) -> list[Issue]:
    """A target-steps plan's epochs go to the trainer: more than its epochs setting allows is an error."""
    high = limits.LIMITS["epochs"][1]
    if not plan.planned or plan.epochs <= high:
        return []
    message = (
        f"target_steps {plan.target_steps} needs {plan.epochs} epochs of {plan.steps_per_epoch} step(s) "
        f"here; the trainer takes at most {high} epochs. Lower target_steps (to at most "
        f"{high * plan.steps_per_epoch} with these repeats), or add images or repeats."
    )
    return [Issue("error", scan.project_dir, message, "plan-epochs")]


def _repeats(scan: ProjectScan, mode: str, opts: DatasetOptions, issues: list[Issue]):
    """The mode's repeats; a weights text that cannot be read is an issue and counts as empty."""
    weights: dict[str, float] = {}
    text = opts.weights_text
    if mode == WEIGHTS:
        try:
            weights = parse_weights(text)
        except ValidationError as exc:
            issues.append(Issue("error", scan.project_dir, str(exc), "weights-text"))
            text = ""
    budget = _balance_budget(scan, opts)
    try:
        plan = plan_repeats(scan, mode, text, budget, _target_distance(scan, opts))
    except ValueError as exc:  # balance refuses impossible input; the checks above make this rare
        issues.append(Issue("error", scan.project_dir, f"The weights cannot be balanced: {exc}.", "balance"))
        plan = RepeatsPlan(mode, {}, None)
    issues += [Issue("warning", scan.project_dir, n, "balance") for n in plan.notes]
    return plan, weights


def _balance_budget(scan: ProjectScan, opts: DatasetOptions) -> int | None:
    """With a target, one epoch may not need more steps than the target (shares as precise as fit)."""
    budget = opts.max_items_per_epoch
    if not opts.target_steps:
        return budget
    regf = 2 if _has_reg(scan) else 1
    images = sum(s.item_count for s in scan.train)
    fit = max(images, opts.target_steps * opts.batch_size // regf)
    return min(budget or balance.DEFAULT_MAX_ITEMS_PER_EPOCH, fit)


def _has_reg(scan: ProjectScan) -> bool:
    """Regularization images in the dataset (kohya then counts every epoch twice)."""
    return any(s.item_count and s.repeats != 0 and not s.error for s in scan.reg)


def _target_distance(scan: ProjectScan, opts: DatasetOptions):
    """How far `items` per epoch can land from the target at the best number of epochs (None: no target)."""
    if not opts.target_steps:
        return None
    regf = 2 if _has_reg(scan) else 1

    def distance(items: int) -> int:
        per_epoch = max(1, -(-items * regf // opts.batch_size))
        low = max(1, opts.target_steps // per_epoch)
        return min(abs(e * per_epoch - opts.target_steps) for e in (low, low + 1))

    return distance


def _any_wrong_size(scan: ProjectScan, resolution: tuple[int, int]) -> bool:
    return any(resize_cache.wrong_size(s, resolution) for s in scan.subsets)


def _excluded(scan: ProjectScan, plan: RepeatsPlan) -> set[str]:
    reps = plan.repeats
    return {s.name for s in scan.train if s.item_count and reps.get(s.name, 0) <= 0}


def _plan_steps(scan: ProjectScan, plan: RepeatsPlan, opts: DatasetOptions):
    """The step math; with a target, the epochs (and scaled repeats) that land closest to it."""
    active = [b for b in (plan.result.subsets if plan.result else []) if b.repeats > 0 and not b.empty]
    has_reg = _has_reg(scan)
    if not opts.target_steps or not active:
        items = sum(b.items for b in active)
        return plan, steps.step_math(items, has_reg, opts.batch_size, opts.epochs)
    budget = opts.max_items_per_epoch or balance.DEFAULT_MAX_ITEMS_PER_EPOCH
    reps, step_plan = steps.plan_target(
        [b.images for b in active],
        [b.repeats for b in active],
        has_reg,
        opts.batch_size,
        opts.target_steps,
        budget,
    )
    new = dict(zip([b.name for b in active], reps, strict=True))
    return replace(plan, result=scaled(plan.result, new)), step_plan


def _dataset_subsets(scan: ProjectScan, plan: RepeatsPlan) -> list[DatasetSubset]:
    rows = {b.name: b for b in plan.result.subsets} if plan.result else {}
    out = []
    for s in scan.train:
        b = rows.get(s.name)
        if b is None or b.repeats <= 0 or b.empty or s.error:
            continue
        out.append(
            DatasetSubset(
                s.name,
                s.image_dir,
                s.item_count,
                b.repeats,
                plan.weights.get(s.name, 1.0),
                s.name.strip(),
                False,
                b.share,
                b.target_share,
                s.alpha_mask,
                **_video_facts(s),
                **_control_facts(s),
            )
        )
    for s in scan.reg:
        if s.item_count and s.repeats != 0 and not s.error:
            # kohya cycles regularization images to match the training items: their repeats barely matter
            out.append(
                DatasetSubset(
                    s.name,
                    s.image_dir,
                    s.item_count,
                    max(1, s.repeats or 1),
                    0.0,
                    s.name.strip(),
                    True,
                    alpha_mask=s.alpha_mask,
                    **_video_facts(s),
                )
            )
    return out


def _control_facts(s: SubsetScan) -> dict:
    """The DatasetSubset fields of a subset's control/ folder (image pairs); none without one."""
    if not s.control_dir:
        return {}
    return {
        "control_dir": s.control_dir,
        "control_count": len(s.controls),
        "control_missing": len(s.without_control),
    }


def _video_facts(s: SubsetScan) -> dict:
    """The DatasetSubset fields that say what a video subset holds (defaults for an image subset)."""
    if s.kind != "video":
        return {}
    low, high = s.frame_range()
    frames = {n: v.frames for n, v in s.video_info.items()}
    return {
        "kind": "video",
        "video_count": s.video_count,
        "frames_min": low,
        "frames_max": high,
        "fps": s.fps_values(),
        "video_frames": frames,
    }


# --------------------------------------------------------------------------- preview
def preview(
    project_dir: str | os.PathLike,
    options: DatasetOptions,
    *,
    guard: Guard | None = None,
    rules: ImageRules | None = None,
) -> dict:
    """A JSON-ready report of what `prepare_dataset` would do; dataset problems are reported, not raised.

    Raises WorkbenchError only when the project folder is missing or may not be read.
    """
    a = analyse(project_dir, options, guard=guard, rules=rules)
    rep = report.build_report(a)
    rep["summary"] = report.summary_text(rep)
    return rep


# --------------------------------------------------------------------------- apply
def prepare_dataset(
    project_dir: str | os.PathLike,
    options: DatasetOptions,
    *,
    apply_mode: str = "toml",
    dry_run: bool = False,
    guard: Guard | None = None,
    rules: ImageRules | None = None,
    check_cancel: resize_cache.CancelCheck = None,
) -> tuple[LoraDataset, str]:
    """Scan, check, balance and apply: returns the LoraDataset and the summary text.

    mode "toml" writes `<project>/dataset.toml` and leaves the folders alone; "rename" renames the
    subset folders to `N_Subject` (journaled, see rename.py) and writes the TOML too. Validation
    errors raise ValidationError before anything is changed; `dry_run` changes nothing. The long steps
    (scanning the folders, resized copies) call `check_cancel` before each file; what it raises stops
    them (ComfyUI's interrupt), with nothing half-written and the dataset TOML not written.
    """
    if apply_mode not in APPLY_MODES:
        raise ValidationError(f"Unknown apply mode {apply_mode!r}; use one of {', '.join(APPLY_MODES)}.")
    guard = guard or Guard()
    with open_project(project_dir, guard) as top:
        root = top.path
    notes = _finish_interrupted_rename(root, dry_run)
    a = analyse(root, options, guard=guard, rules=rules, check_cancel=check_cancel)
    if a.errors:
        msgs = "\n".join(f"- {i.message}" for i in a.errors)
        raise ValidationError(
            f"The dataset in {root} has {len(a.errors)} problem(s); nothing was changed:\n{msgs}"
        )
    subsets = [replace(d) for d in a.subsets]
    if a.options.wrong_size == "resize" and not a.enable_bucket:
        notes += _use_resized_copies(a, subsets, guard, dry_run, check_cancel)
    if apply_mode == "rename":
        notes += _rename_folders(root, a, subsets, dry_run)
    toml_path = root / TOML_NAME
    toml_text = _toml_text(a, subsets)
    if not dry_run:
        dataset_toml.write(toml_path, toml_text, guard)
    ds = _lora_dataset(a, root, toml_path, toml_text, subsets, guard)
    rep = report.build_report(a)
    for row in rep["subsets"]:  # renamed or cached folders
        for d in subsets:
            if d.name == row["name"] and d.is_reg == row["is_reg"]:
                row["folder"] = d.image_dir
    text = report.summary_text(rep, mode=apply_mode, toml_path=str(toml_path), dry_run=dry_run, notes=notes)
    return ds, text


def _finish_interrupted_rename(root: Path, dry_run: bool) -> list[str]:
    if not rename.journal_path(root).exists():
        return []
    if dry_run:
        raise ValidationError(
            f"A folder rename in {root} was interrupted; run `lora-workbench dataset recover "
            f"{root}` (or apply again without dry run to finish it)."
        )
    done = rename.recover(root, "finish")
    return [f"Finished an interrupted rename ({len(done.steps)} folder(s))."]


def _use_resized_copies(
    a: Analysis,
    subsets: list[DatasetSubset],
    guard: Guard,
    dry_run: bool,
    check_cancel: resize_cache.CancelCheck = None,
) -> list[str]:
    needing = [s for s in a.scan.subsets if resize_cache.wrong_size(s, a.options.resolution)]
    if not needing:
        return []
    if dry_run:
        n = sum(len(resize_cache.wrong_size(s, a.options.resolution)) for s in needing)
        return [
            f"Would train {n} wrong-size image(s) from resized copies in {resize_cache.cache_path(a.scan.project_dir, a.options.resolution)}."
        ]
    used = {(d.is_reg, d.name) for d in subsets}
    result = resize_cache.build(
        a.scan,
        a.options.resolution,
        guard,
        [s for s in needing if (s.is_reg, s.name) in used],
        check_cancel,
    )
    by_dir = {s.image_dir: result.folders.get(s.folder) for s in a.scan.subsets}
    for d in subsets:
        d.image_dir = by_dir.get(d.image_dir) or d.image_dir
    return [result.note()]


def _rename_folders(root: Path, a: Analysis, subsets: list[DatasetSubset], dry_run: bool) -> list[str]:
    by_dir = {d.image_dir: d for d in subsets}
    excluded = _excluded(a.scan, a.plan)
    moves: list[tuple[str, str]] = []
    for s in a.scan.train:
        d = by_dir.get(s.image_dir)
        if s.flat:  # the user's own folder of images (maybe the project folder itself): never renamed
            continue
        if d is not None:
            target = f"{d.repeats}_{s.name}"
        elif s.item_count and s.name in excluded:
            target = f"0_{s.name}"  # kohya's own folder scan skips 0 repeats
        else:
            continue
        if target != s.dirname:
            moves.append((s.folder, str(Path(s.folder).with_name(target))))
    plan = rename.plan_renames(root, moves)
    if not dry_run:
        rename.apply_plan(plan)
    moved = dict(plan.moves)
    for d in subsets:
        for s in a.scan.subsets:
            if s.image_dir == d.image_dir and s.folder in moved and s.link is None:
                d.image_dir = moved[s.folder]
    if not plan.moves:
        if any(s.flat for s in a.scan.train):
            return ["A plain folder of images is never renamed; its repeats are in dataset.toml."]
        return ["Folder names already match the repeats; nothing renamed."]
    verb = "Would rename" if dry_run else "Renamed"
    return [
        f"{verb} {len(plan.moves)} folder(s): "
        + ", ".join(f"{Path(s).name} -> {Path(t).name}" for s, t in plan.moves)
    ]


def _toml_text(a: Analysis, subsets: list[DatasetSubset]) -> str:
    config = dataset_toml.build_config(
        subsets,
        resolution=a.options.resolution,
        batch_size=a.options.batch_size,
        enable_bucket=a.enable_bucket,
        caption_extension=a.options.caption_extension,
        subset_options=a.options.subset_options,
        missing_caption=a.options.missing_caption,
    )
    st = a.steps
    plan = (
        {"target_steps": st.target_steps, "epochs": st.epochs, "total_steps": st.total_steps}
        if st.planned
        else None
    )
    weights = {s.name: a.plan.weights.get(s.name, 1.0) for s in a.scan.train} if a.mode != FOLDERS else None
    return dataset_toml.dumps(config, weights=weights, plan=plan, epochs=a.options.epochs)


def _lora_dataset(
    a: Analysis, root: Path, toml_path: Path, toml_text: str, subsets, guard: Guard
) -> LoraDataset:
    return LoraDataset(
        project_dir=str(root),
        toml_path=str(toml_path),
        resolution=a.options.resolution,
        enable_bucket=a.enable_bucket,
        batch_size=a.options.batch_size,
        subsets=subsets,
        items_per_epoch=a.steps.items_per_epoch,
        steps_per_epoch=a.steps.steps_per_epoch,
        caption_extension=a.options.caption_extension,
        fingerprint=_fingerprint(root, subsets, toml_text, a, guard),
        warnings=[i.message for i in a.warnings],
        planned_epochs=a.steps.epochs if a.steps.planned else 0,
        target_steps=a.steps.target_steps,
        epochs=a.options.epochs,
    )


def _fingerprint(root: Path, subsets, toml_text: str, a: Analysis, guard: Guard) -> str:
    try:
        return fingerprint.content_fingerprint(
            root, subsets, toml_text, a.options.caption_extension, guard, a.scan.rules
        )
    except WorkbenchError:  # a dry run's renamed folders do not exist yet
        return ""


def prepare_report(project_dir, options: DatasetOptions, **kwargs) -> dict:
    """prepare_dataset plus a JSON-ready dict (for events and `dataset apply --json`)."""
    ds, text = prepare_dataset(project_dir, options, **kwargs)
    return {
        "dataset": ds.to_dict(),
        "summary": text,
        "mode": kwargs.get("apply_mode", "toml"),
        "dry_run": kwargs.get("dry_run", False),
    }


def init_and_scan(project_dir: str | os.PathLike, guard: Guard | None = None) -> ProjectScan:
    """Create the project layout when missing, then scan (what the node does with a new folder)."""
    project.init_project(project_dir)
    return scan_project(project_dir, guard=guard)
