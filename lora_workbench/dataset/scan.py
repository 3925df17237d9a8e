"""Dataset preparation: scan a training project, validate it, turn weights into repeats, apply them.

A project (see project.py) keeps its subsets as `images/N_Subject/` folders (and optionally
`regularization/N_Subject/`), each image with a `.txt` caption beside it. `scan_project` reads the
folders and image headers (no decode), `validate` turns the scan into per-file issues, `preview` is the
never-raising report the web editor shows, and `prepare_dataset` writes kohya's dataset TOML (or renames
the folders, journaled) and returns the `LoraDataset` the training node consumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..datatypes import DatasetSubset, LoraDataset
from ..errors import ValidationError, WorkbenchError
from . import balance, dataset_toml, project, rename
from .images import IMAGE_EXTS, image_size, image_size_decoded, is_image

CAPTION_EXT = ".txt"
TRAIN_DIR = "images"
REG_DIR = "regularization"
TOML_NAME = "dataset.toml"
_SUBSET_RE = re.compile(r"^(\d+)_(.+)$")
_MAX_LISTED = 20  # per-file messages shown per kind and subset before "... and N more"


# --------------------------------------------------------------------------- scan
@dataclass
class SubsetScan:
    """One folder of images/ or regularization/."""

    folder: str  # absolute path
    dirname: str  # e.g. "3_Subject"
    name: str  # "Subject" (the whole dirname when there is no number prefix)
    repeats: int | None  # the folder's number prefix, None without one
    is_reg: bool
    images: list[str] = field(default_factory=list)  # file names, sorted
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # file name -> (w, h)
    corrupt: dict[str, str] = field(default_factory=dict)  # file name -> reason
    missing_captions: list[str] = field(default_factory=list)  # image file names without a caption
    empty_captions: list[str] = field(default_factory=list)  # caption file names that are empty
    error: str = ""  # the folder itself could not be listed

    @property
    def image_count(self) -> int:
        return len(self.images)

    @property
    def captions(self) -> int:
        return len(self.images) - len(self.missing_captions)

    def size_counts(self) -> dict[str, int]:
        c = Counter(f"{w}x{h}" for w, h in self.sizes.values())
        return dict(c.most_common())

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "dirname": self.dirname,
            "name": self.name,
            "repeats": self.repeats,
            "is_reg": self.is_reg,
            "images": self.image_count,
            "captions": self.captions,
            "missing_captions": list(self.missing_captions),
            "empty_captions": list(self.empty_captions),
            "corrupt": dict(self.corrupt),
            "sizes": self.size_counts(),
            "error": self.error,
        }


@dataclass
class ProjectScan:
    project_dir: str
    subsets: list[SubsetScan]
    loose_images: list[str] = field(default_factory=list)  # images right in images/ (kohya ignores them)
    missing_folders: list[str] = field(default_factory=list)  # images/ or regularization/ absent

    @property
    def train(self) -> list[SubsetScan]:
        return [s for s in self.subsets if not s.is_reg]

    @property
    def reg(self) -> list[SubsetScan]:
        return [s for s in self.subsets if s.is_reg]

    def to_dict(self) -> dict:
        return {
            "project_dir": self.project_dir,
            "subsets": [s.to_dict() for s in self.subsets],
            "loose_images": list(self.loose_images),
            "missing_folders": list(self.missing_folders),
            "images": sum(s.image_count for s in self.train),
            "reg_images": sum(s.image_count for s in self.reg),
        }


def parse_subset_dirname(dirname: str) -> tuple[int | None, str]:
    """`3_Subject` -> (3, "Subject"); a name without a number prefix -> (None, name)."""
    m = _SUBSET_RE.match(dirname)
    if m:
        return int(m.group(1)), m.group(2)
    return None, dirname


def _scan_subset(folder: Path, is_reg: bool, verify: bool, caption_ext: str) -> SubsetScan:
    repeats, name = parse_subset_dirname(folder.name)
    sub = SubsetScan(folder=str(folder), dirname=folder.name, name=name, repeats=repeats, is_reg=is_reg)
    files: dict[str, os.DirEntry] = {}
    with os.scandir(folder) as it:
        for e in it:
            if e.is_file():
                files[e.name] = e
    reader = image_size_decoded if verify else image_size
    for fname in sorted(files):
        if not is_image(fname):
            continue
        sub.images.append(fname)
        try:
            sub.sizes[fname] = reader(os.path.join(folder, fname))
        except Exception as exc:  # PIL raises many kinds; all mean "cannot be read"
            sub.corrupt[fname] = str(exc) or type(exc).__name__
        cap = os.path.splitext(fname)[0] + caption_ext
        ce = files.get(cap)
        if ce is None:
            sub.missing_captions.append(fname)
        else:
            size = ce.stat().st_size
            if size == 0 or (size < 64 and not _read_text(ce.path).strip()):
                sub.empty_captions.append(cap)
    return sub


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def scan_project(
    project_dir: str | os.PathLike, *, verify: bool = False, caption_extension: str = CAPTION_EXT
) -> ProjectScan:
    """Every subset of images/ and regularization/ with counts, captions and header sizes.

    `verify=True` decodes every image fully (slow) instead of reading headers.
    """
    root = Path(project_dir).expanduser()
    if not root.is_dir():
        raise WorkbenchError(
            f"The project folder {root} does not exist; create it with "
            f"`lora-workbench train-init {root}` or pick another folder."
        )
    root = root.resolve()
    scan = ProjectScan(project_dir=str(root), subsets=[])
    for top, is_reg in ((TRAIN_DIR, False), (REG_DIR, True)):
        base = root / top
        if not base.is_dir():
            scan.missing_folders.append(top)
            continue
        entries = sorted(os.scandir(base), key=lambda e: e.name)
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                try:
                    scan.subsets.append(_scan_subset(Path(e.path), is_reg, verify, caption_extension))
                except OSError as exc:
                    repeats, name = parse_subset_dirname(e.name)
                    scan.subsets.append(
                        SubsetScan(
                            folder=e.path,
                            dirname=e.name,
                            name=name,
                            repeats=repeats,
                            is_reg=is_reg,
                            error=exc.strerror or str(exc),
                        )
                    )
            elif not is_reg and e.is_file() and is_image(e.name):
                scan.loose_images.append(e.name)
    return scan


# --------------------------------------------------------------------------- weights
def _strip_prefix(key: str) -> str:
    return parse_subset_dirname(key)[1]


def parse_weights(text: str | None) -> dict[str, float]:  # noqa: C901 (cut into steps pending)
    """`Subject: weight` per line (`3_Subject: 2` and `Subject = 2` work too; `#` starts a comment).

    A JSON object {"Subject": 2} is accepted as well. Raises ValidationError naming the bad line.
    """
    out: dict[str, float] = {}
    if not text or not text.strip():
        return out
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"The weights look like JSON but are not valid ({exc.msg} at line "
                f"{exc.lineno}); write one `Subject: weight` per line instead."
            ) from None
        if not isinstance(data, dict):
            raise ValidationError('The weights JSON must be an object like {"Subject": 2}.')
        items = [(str(k), v, i + 1, f"{k}: {v}") for i, (k, v) in enumerate(data.items())]
    else:
        items = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if not line:
                continue
            sep = max(line.rfind(":"), line.rfind("="))
            if sep <= 0:
                raise ValidationError(
                    f"Line {lineno} of the weights, {raw.strip()!r}, is not `Subject: weight` "
                    f"(e.g. `Subject: 2`); fix or remove it."
                )
            items.append((line[:sep].strip(), line[sep + 1 :].strip(), lineno, raw.strip()))
    for key, value, lineno, raw in items:
        name = _strip_prefix(key)
        if not name:
            raise ValidationError(f"Line {lineno} of the weights, {raw!r}, has no subject name.")
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise ValidationError(
                f"Line {lineno} of the weights, {raw!r}: {value!r} is not a number; "
                f"write e.g. `{name}: 2` (0 excludes the subset)."
            ) from None
        if not math.isfinite(w) or w < 0:
            raise ValidationError(
                f"Line {lineno} of the weights, {raw!r}: the weight must be a number >= 0 "
                f"(0 excludes the subset)."
            )
        if name in out:
            raise ValidationError(
                f"Line {lineno} of the weights, {raw!r}: {name!r} is given twice; keep one line."
            )
        out[name] = w
    return out


def format_weights(weights: dict[str, float]) -> str:
    """The text form parse_weights reads: one `Subject: weight` per line."""
    return "".join(f"{name}: {w:g}\n" for name, w in weights.items())


def effective_weights(scan: ProjectScan, weights: dict[str, float]) -> dict[str, float]:
    """Weight per training subset: the given one, else 0 for a `0_` folder, else 1 (equal weight)."""
    out = {}
    for s in scan.train:
        if s.name in weights:
            out[s.name] = float(weights[s.name])
        else:
            out[s.name] = 0.0 if s.repeats == 0 else 1.0
    return out


# --------------------------------------------------------------------------- validation
@dataclass
class Issue:
    severity: str  # "error" | "warning"
    path: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def _listed(sub: SubsetScan, names: list[str], severity: str, make, out: list[Issue]) -> None:
    for n in names[:_MAX_LISTED]:
        out.append(Issue(severity, os.path.join(sub.folder, n), make(n)))
    if len(names) > _MAX_LISTED:
        out.append(
            Issue(
                severity, sub.folder, f"... and {len(names) - _MAX_LISTED} more like that in {sub.dirname}."
            )
        )


def validate(  # noqa: C901 (cut into steps pending)
    scan: ProjectScan,
    resolution: tuple[int, int],
    enable_bucket: bool,
    weights: dict[str, float] | None = None,
) -> list[Issue]:
    """Issues that would make training fail (errors) or differ from what the user expects (warnings)."""
    weights = weights or {}
    issues: list[Issue] = []
    w_res, h_res = int(resolution[0]), int(resolution[1])
    root = scan.project_dir
    if w_res < 64 or h_res < 64:
        issues.append(
            Issue("error", root, f"The resolution {w_res}x{h_res} is too small; use at least 64x64.")
        )
    if TRAIN_DIR in scan.missing_folders:
        issues.append(
            Issue(
                "error",
                os.path.join(root, TRAIN_DIR),
                f"The project has no {TRAIN_DIR}/ folder; run `lora-workbench train-init {root}` "
                f"and put each subject's images in {TRAIN_DIR}/N_Subject/.",
            )
        )
    elif not scan.train:
        issues.append(
            Issue(
                "error",
                os.path.join(root, TRAIN_DIR),
                f"{TRAIN_DIR}/ has no subset folders; put each subject's images (with .txt captions) "
                f"in {TRAIN_DIR}/N_Subject/ (e.g. {TRAIN_DIR}/1_Subject).",
            )
        )
    if scan.loose_images:
        issues.append(
            Issue(
                "warning",
                os.path.join(root, TRAIN_DIR),
                f"{len(scan.loose_images)} image(s) lie directly in {TRAIN_DIR}/ (e.g. "
                f"{scan.loose_images[0]}) and are not trained; move them into a subset folder.",
            )
        )
    names: dict[str, list[str]] = {}
    for s in scan.train:
        names.setdefault(s.name, []).append(s.dirname)
    for name, dirs in names.items():
        if len(dirs) > 1:
            issues.append(
                Issue(
                    "error",
                    os.path.join(root, TRAIN_DIR),
                    f"The subsets {', '.join(dirs)} share the subject name {name!r}; rename one so "
                    f"each weight names one subset.",
                )
            )
    for key in weights:
        if key not in names:
            known = ", ".join(sorted(names)) or "none"
            issues.append(
                Issue(
                    "error",
                    root,
                    f"The weights name {key!r}, which is no subset of {TRAIN_DIR}/ "
                    f"(subsets: {known}); fix the name or remove the line.",
                )
            )
    eff = effective_weights(scan, weights)
    if scan.train and not any(eff[s.name] > 0 and s.image_count > 0 for s in scan.train):
        issues.append(
            Issue(
                "error",
                os.path.join(root, TRAIN_DIR),
                "No subset has both images and a weight above 0, so there is nothing to train.",
            )
        )
    for s in scan.subsets:
        kind = "regularization subset" if s.is_reg else "subset"
        if s.error:
            issues.append(
                Issue(
                    "error",
                    s.folder,
                    f"The {kind} folder {s.dirname} cannot be read ({s.error}); check its permissions.",
                )
            )
            continue
        if s.repeats is None:
            issues.append(
                Issue(
                    "warning",
                    s.folder,
                    f"The {kind} folder {s.dirname!r} has no `N_` repeats prefix; the dataset TOML "
                    f"still includes it (kohya's own folder scan would skip it).",
                )
            )
        if s.image_count == 0:
            issues.append(
                Issue(
                    "warning",
                    s.folder,
                    f"The {kind} {s.dirname} has no images ({', '.join(IMAGE_EXTS)}); it is skipped.",
                )
            )
            continue
        excluded = not s.is_reg and eff.get(s.name, 1.0) <= 0
        if not s.is_reg and s.repeats == 0 and s.name not in weights:
            issues.append(
                Issue(
                    "warning",
                    s.folder,
                    f"The subset {s.dirname} has 0 repeats in its name, so it "
                    f"is excluded; give `{s.name}` a weight to train it.",
                )
            )
        if excluded:
            continue
        _listed(
            s,
            sorted(s.corrupt),
            "error",
            lambda n, s=s: (
                f"{s.dirname}/{n} cannot be read as an image ({s.corrupt[n]}); replace or remove it."
            ),
            issues,
        )
        if s.is_reg:
            if s.missing_captions:
                issues.append(
                    Issue(
                        "warning",
                        s.folder,
                        f"{len(s.missing_captions)} regularization image(s) in "
                        f"{s.dirname} have no caption; the class token "
                        f"{s.name!r} is used for them.",
                    )
                )
        else:
            _listed(
                s,
                s.missing_captions,
                "error",
                lambda n, s=s: (
                    f"{s.dirname}/{n} has no caption: add {os.path.splitext(n)[0]}{CAPTION_EXT} beside it."
                ),
                issues,
            )
        _listed(
            s,
            s.empty_captions,
            "error",
            lambda n, s=s: (
                f"{s.dirname}/{n} is empty; kohya refuses empty "
                f"captions: write the caption or delete the file."
            ),
            issues,
        )
        bad_size: list[str] = []
        small: list[str] = []
        for fname, (w, h) in s.sizes.items():
            if not enable_bucket and (w, h) != (w_res, h_res):
                bad_size.append(fname)
            elif enable_bucket and (w < w_res or h < h_res) and w * h < w_res * h_res:
                small.append(fname)
        _listed(
            s,
            bad_size,
            "error",
            lambda n, s=s: (
                f"{s.dirname}/{n} is {s.sizes[n][0]}x{s.sizes[n][1]}, not "
                f"the training resolution {w_res}x{h_res}; resize it or turn buckets on."
            ),
            issues,
        )
        _listed(
            s,
            small,
            "warning",
            lambda n, s=s: (
                f"{s.dirname}/{n} is {s.sizes[n][0]}x{s.sizes[n][1]}, "
                f"smaller than {w_res}x{h_res}; it will be upscaled (blurry)."
            ),
            issues,
        )
    return issues


# --------------------------------------------------------------------------- keywords
def caption_keywords(
    scan: ProjectScan, caption_extension: str = CAPTION_EXT, include_reg: bool = False
) -> list[tuple[str, int]]:
    """Distinct comma-separated tags across the captions with their counts, most frequent first."""
    counts: Counter[str] = Counter()
    for s in scan.subsets:
        if s.is_reg and not include_reg:
            continue
        for fname in s.images:
            cap = os.path.join(s.folder, os.path.splitext(fname)[0] + caption_extension)
            try:
                text = _read_text(cap)
            except OSError:
                continue
            for tag in re.split(r"[,\n]", text):
                tag = tag.strip()
                if tag:
                    counts[tag] += 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))


def format_keywords(keywords: list[tuple[str, int]], limit: int | None = 40) -> str:
    shown = keywords if limit is None else keywords[:limit]
    text = ", ".join(f"{k} ({n})" for k, n in shown)
    if limit is not None and len(keywords) > limit:
        text += f", ... and {len(keywords) - limit} more"
    return text


# --------------------------------------------------------------------------- step math
def step_math(train_items: int, has_reg: bool, batch_size: int, epochs: int) -> dict:
    """Items and steps as kohya counts them (bucket rounding can add a few steps per epoch)."""
    batch = max(1, int(batch_size))
    items = int(train_items) * (2 if has_reg else 1)
    steps = math.ceil(items / batch)
    return {
        "train_items": int(train_items),
        "regularization": bool(has_reg),
        "items_per_epoch": items,
        "batch_size": batch,
        "steps_per_epoch": steps,
        "epochs": int(epochs),
        "total_steps": steps * max(1, int(epochs)),
    }


# --------------------------------------------------------------------------- analysis
@dataclass
class _Analysis:
    scan: ProjectScan
    weights: dict[str, float]
    issues: list[Issue]
    balance: balance.BalanceResult | None
    subsets: list[DatasetSubset]  # the subsets that go into the TOML, training first
    excluded: list[str]  # subset dirnames left out (weight 0 or empty)
    steps: dict
    keywords: list[tuple[str, int]]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


def _analyse(
    project_dir, weights_text, resolution, enable_bucket, batch_size, epochs, max_items_per_epoch
) -> _Analysis:
    scan = scan_project(project_dir)
    issues: list[Issue] = []
    try:
        weights = parse_weights(weights_text)
    except ValidationError as exc:
        issues.append(Issue("error", scan.project_dir, str(exc)))
        weights = {}
    issues += validate(scan, resolution, enable_bucket, weights)
    eff = effective_weights(scan, weights)
    usable = {s.name: s.image_count for s in scan.train if s.image_count > 0}
    result = None
    subsets: list[DatasetSubset] = []
    excluded: list[str] = []
    if usable:
        try:
            result = balance.balance_repeats(usable, {n: eff[n] for n in usable}, max_items_per_epoch)
        except ValueError as exc:
            issues.append(Issue("error", scan.project_dir, f"The weights cannot be balanced: {exc}."))
        if result is not None:
            for note in result.notes:
                issues.append(Issue("warning", scan.project_dir, note))
    by_name = {b.name: b for b in result.subsets} if result else {}
    for s in scan.train:
        b = by_name.get(s.name)
        if b is None or b.excluded or b.empty:
            excluded.append(s.dirname)
            continue
        subsets.append(
            DatasetSubset(
                name=s.name,
                image_dir=s.folder,
                images=s.image_count,
                repeats=b.repeats,
                weight=b.weight,
                class_tokens=s.name,
                is_reg=False,
                share=b.share,
                target_share=b.target_share,
            )
        )
    for s in scan.reg:
        if s.image_count == 0:
            excluded.append(f"{REG_DIR}/{s.dirname}")
            continue
        # kohya cycles regularization images to match the training items, so their repeats barely matter
        subsets.append(
            DatasetSubset(
                name=s.name,
                image_dir=s.folder,
                images=s.image_count,
                repeats=max(1, s.repeats or 1),
                weight=0.0,
                class_tokens=s.name,
                is_reg=True,
            )
        )
    train_items = sum(d.items for d in subsets if not d.is_reg)
    has_reg = any(d.is_reg for d in subsets)
    steps = step_math(train_items, has_reg, batch_size, epochs)
    keywords = caption_keywords(scan)
    return _Analysis(scan, weights, issues, result, subsets, excluded, steps, keywords)


def _report(a: _Analysis, resolution, enable_bucket) -> dict:
    eff = effective_weights(a.scan, a.weights)
    by_name = {b.name: b for b in a.balance.subsets} if a.balance else {}
    rows = []
    for s in a.scan.subsets:
        b = by_name.get(s.name) if not s.is_reg else None
        if s.is_reg:
            repeats = max(1, s.repeats or 1) if s.image_count else 0
        else:
            repeats = b.repeats if b and not b.excluded and not b.empty else 0
        rows.append(
            {
                "name": s.name,
                "folder": s.folder,
                "dirname": s.dirname,
                "is_reg": s.is_reg,
                "images": s.image_count,
                "captions": s.captions,
                "captions_missing": len(s.missing_captions),
                "corrupt": len(s.corrupt),
                "folder_repeats": s.repeats,
                "weight": None if s.is_reg else eff.get(s.name, 1.0),
                "repeats": repeats,
                "items": s.image_count * repeats,
                "share": b.share if b else 0.0,
                "target_share": b.target_share if b else 0.0,
                "error": b.error if b else 0.0,
                "excluded": bool(not s.is_reg and b is not None and b.excluded) or s.image_count == 0,
                "sizes": s.size_counts(),
            }
        )
    return {
        "project_dir": a.scan.project_dir,
        "resolution": [int(resolution[0]), int(resolution[1])],
        "enable_bucket": bool(enable_bucket),
        "subsets": rows,
        "weights": {s.name: eff[s.name] for s in a.scan.train},
        "weights_text": format_weights({s.name: eff[s.name] for s in a.scan.train}),
        "balance": a.balance.to_dict() if a.balance else None,
        "issues": [i.to_dict() for i in a.issues],
        "errors": len(a.errors),
        "warnings": len(a.warnings),
        "ok": not a.errors,
        "steps": a.steps,
        "keywords": [[k, n] for k, n in a.keywords],
    }


def preview(
    project_dir: str | os.PathLike,
    weights_text: str | None,
    resolution: tuple[int, int],
    enable_bucket: bool,
    batch_size: int = 1,
    epochs: int = 1,
    max_items_per_epoch: int | None = None,
) -> dict:
    """A JSON-ready report of what `prepare_dataset` would do; dataset problems are reported, not raised.

    Raises WorkbenchError only when `project_dir` is not a folder.
    """
    a = _analyse(
        project_dir, weights_text, resolution, enable_bucket, batch_size, epochs, max_items_per_epoch
    )
    report = _report(a, resolution, enable_bucket)
    report["summary"] = summary_text(report)
    return report


# --------------------------------------------------------------------------- summary
def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def summary_text(
    report: dict,
    *,
    mode: str | None = None,
    toml_path: str | None = None,
    dry_run: bool = False,
    notes: list[str] | None = None,
) -> str:
    """The readable table the node shows and the CLI prints (one function, so both agree)."""
    lines: list[str] = [f"Dataset {report['project_dir']}"]
    w, h = report["resolution"]
    head = f"resolution {w}x{h}, buckets {'on' if report['enable_bucket'] else 'off'}"
    if mode:
        head += f", mode {mode}"
    if toml_path:
        head += f", config {toml_path}" + (" (dry run: nothing written)" if dry_run else "")
    lines.append(head)
    rows = report["subsets"]
    width = max([len("subset")] + [len(r["name"]) + (4 if r["is_reg"] else 0) for r in rows])
    width = min(width, 40)
    lines.append(
        f"{'subset':<{width}}  {'images':>6}  {'weight':>6}  {'repeats':>7}  {'items':>7}  "
        f"{'share':>6}  {'target':>6}"
    )
    for r in rows:
        name = ("reg " if r["is_reg"] else "") + r["name"]
        if len(name) > width:
            name = name[: width - 1] + "~"
        weight = "-" if r["weight"] is None else f"{r['weight']:g}"
        if r["excluded"]:
            why = "excluded" if r["images"] else "empty"
            lines.append(f"{name:<{width}}  {r['images']:>6}  {weight:>6}  {why:>7}")
            continue
        share = "-" if r["is_reg"] else _pct(r["share"])
        target = "-" if r["is_reg"] else _pct(r["target_share"])
        lines.append(
            f"{name:<{width}}  {r['images']:>6}  {weight:>6}  {r['repeats']:>7}  {r['items']:>7}  "
            f"{share:>6}  {target:>6}"
        )
    st = report["steps"]
    math_line = f"Steps: {st['train_items']} items"
    if st["regularization"]:
        math_line += f" x2 (regularization) = {st['items_per_epoch']}"
    math_line += (
        f" / batch {st['batch_size']} = {st['steps_per_epoch']} steps per epoch x {st['epochs']} "
        f"epochs = {st['total_steps']} steps"
    )
    lines.append(math_line)
    bal = report.get("balance")
    if bal:
        lines.append(
            f"Balance: {'exact' if bal['exact'] else 'closest'} shares, max error "
            f"{100 * bal['max_error']:.2f}% (budget {bal['budget']} items per epoch)"
        )
    errors = [i for i in report["issues"] if i["severity"] == "error"]
    warnings = [i for i in report["issues"] if i["severity"] == "warning"]
    if errors:
        lines.append(f"Errors ({len(errors)}):")
        lines += [f"  - {i['message']}" for i in errors]
    if warnings:
        lines.append(f"Warnings ({len(warnings)}):")
        lines += [f"  - {i['message']}" for i in warnings]
    for n in notes or []:
        lines.append(n)
    kws = [(k, n) for k, n in report["keywords"]]
    lines.append(f"Keywords ({len(kws)} distinct): " + (format_keywords(kws) if kws else "none"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- fingerprint
def listing_fingerprint(project_dir: str | os.PathLike) -> str:
    """A cheap hash of the subset folders' listings (names, sizes, mtimes): changes when the dataset does."""
    root = Path(project_dir)
    h = hashlib.sha256()
    for top in (TRAIN_DIR, REG_DIR):
        base = root / top
        try:
            subs = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            h.update(f"{top}:missing\n".encode())
            continue
        for d in subs:
            h.update(f"{top}/{d.name}\n".encode())
            if not d.is_dir():
                continue
            try:
                files = sorted(os.scandir(d.path), key=lambda e: e.name)
            except OSError:
                continue
            for e in files:
                # only images and captions: sd-scripts writes latent caches (*.npz, metadata_cache.json)
                # into these folders, and they must not make a finished training look stale
                if not (is_image(e.name) or e.name.endswith(CAPTION_EXT)):
                    continue
                try:
                    st = e.stat()
                except OSError:
                    continue
                h.update(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]  # dataset.toml is left out: the node itself writes it


def content_fingerprint(
    project_dir: str | os.PathLike,
    subsets: list[DatasetSubset],
    toml_text: str,
    caption_extension: str = CAPTION_EXT,
) -> str:
    """Hash of relative paths, sizes and mtimes of the trained images and captions, plus the TOML text."""
    root = Path(project_dir)
    h = hashlib.sha256(toml_text.encode("utf-8"))
    for s in subsets:
        folder = Path(s.image_dir)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        try:
            rel = folder.relative_to(root).as_posix()
        except ValueError:
            rel = folder.as_posix()
        for e in entries:
            if not e.is_file() or not (is_image(e.name) or e.name.endswith(caption_extension)):
                continue
            st = e.stat()
            h.update(f"{rel}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------- apply
APPLY_MODES = ("toml", "rename")


def prepare_dataset(  # noqa: C901 (cut into steps pending)
    project_dir: str | os.PathLike,
    weights_text: str | None,
    resolution: tuple[int, int],
    enable_bucket: bool,
    batch_size: int,
    apply_mode: str = "toml",
    max_items_per_epoch: int | None = None,
    epochs: int = 1,
    dry_run: bool = False,
    subset_options: dict | None = None,
) -> tuple[LoraDataset, str]:
    """Scan, validate, balance and apply: returns the LoraDataset and the summary text.
    `subset_options`: caption/augmentation keys for every subset (DatasetSubsetWeights.caption_options).

    mode "toml" writes `<project>/dataset.toml` and leaves the folders alone; "rename" renames the
    subset folders to `N_Subject` (journaled, see rename.py) and writes the TOML too. Validation
    errors raise ValidationError before anything is changed; `dry_run` changes nothing.
    """
    if apply_mode not in APPLY_MODES:
        raise ValidationError(f"Unknown apply mode {apply_mode!r}; use one of {', '.join(APPLY_MODES)}.")
    root = Path(project_dir).expanduser()
    if not root.is_dir():
        raise WorkbenchError(
            f"The project folder {root} does not exist; create it with "
            f"`lora-workbench train-init {root}` or pick another folder."
        )
    root = root.resolve()
    notes: list[str] = []
    if rename.journal_path(root).exists():
        if dry_run:
            raise ValidationError(
                f"A folder rename in {root} was interrupted; run `lora-workbench dataset recover "
                f"{root}` (or apply again without dry run to finish it)."
            )
        done = rename.recover(root, "finish")
        notes.append(f"Finished an interrupted rename ({len(done.steps)} folder(s)).")
    a = _analyse(root, weights_text, resolution, enable_bucket, batch_size, epochs, max_items_per_epoch)
    if a.errors:
        msgs = "\n".join(f"- {i.message}" for i in a.errors)
        raise ValidationError(
            f"The dataset in {root} has {len(a.errors)} problem(s); nothing was changed:\n{msgs}"
        )

    subsets = a.subsets
    if apply_mode == "rename":
        eff = effective_weights(a.scan, a.weights)
        by_dir = {d.image_dir: d for d in subsets}
        moves: list[tuple[str, str]] = []
        for s in a.scan.train:
            d = by_dir.get(s.folder)
            if d is not None:
                target = f"{d.repeats}_{s.name}"
            elif s.image_count and eff.get(s.name, 1.0) <= 0:
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
            if d.image_dir in moved:
                d.image_dir = moved[d.image_dir]
        if plan.moves:
            verb = "Would rename" if dry_run else "Renamed"
            notes.append(
                f"{verb} {len(plan.moves)} folder(s): "
                + ", ".join(f"{Path(s).name} -> {Path(t).name}" for s, t in plan.moves)
            )
        else:
            notes.append("Folder names already match the repeats; nothing renamed.")

    toml_path = root / TOML_NAME
    toml_text = dataset_toml.dumps(
        dataset_toml.build_config(
            subsets,
            resolution=resolution,
            batch_size=batch_size,
            enable_bucket=enable_bucket,
            caption_extension=CAPTION_EXT,
            subset_options=subset_options,
        ),
        weights=effective_weights(a.scan, a.weights),
    )
    if not dry_run:
        dataset_toml.write(toml_path, toml_text)
    report = _report(a, resolution, enable_bucket)
    for row in report["subsets"]:  # renamed folders
        for d in subsets:
            if d.name == row["name"] and d.is_reg == row["is_reg"]:
                row["folder"] = d.image_dir
    warnings = [i.message for i in a.warnings]
    ds = LoraDataset(
        project_dir=str(root),
        toml_path=str(toml_path),
        resolution=(int(resolution[0]), int(resolution[1])),
        enable_bucket=bool(enable_bucket),
        batch_size=max(1, int(batch_size)),
        subsets=subsets,
        items_per_epoch=a.steps["items_per_epoch"],
        steps_per_epoch=a.steps["steps_per_epoch"],
        caption_extension=CAPTION_EXT,
        fingerprint=content_fingerprint(root, subsets, toml_text),
        warnings=warnings,
    )
    text = summary_text(report, mode=apply_mode, toml_path=str(toml_path), dry_run=dry_run, notes=notes)
    return ds, text


def prepare_report(
    project_dir,
    weights_text,
    resolution,
    enable_bucket,
    batch_size,
    apply_mode="toml",
    max_items_per_epoch=None,
    epochs=1,
    dry_run=False,
) -> dict:
    """prepare_dataset plus a JSON-ready dict (for events and `dataset apply --json`)."""
    ds, text = prepare_dataset(
        project_dir,
        weights_text,
        resolution,
        enable_bucket,
        batch_size,
        apply_mode,
        max_items_per_epoch,
        epochs,
        dry_run,
    )
    return {"dataset": ds.to_dict(), "summary": text, "mode": apply_mode, "dry_run": dry_run}


def init_and_scan(project_dir: str | os.PathLike) -> ProjectScan:
    """Create the project layout when missing, then scan (what the node does with a new folder)."""
    project.init_project(project_dir)
    return scan_project(project_dir)
