"""What the node shows and the CLI prints: the JSON-ready report of an analysis and its summary table.

One function makes the text for both, so `dataset apply` prints exactly what the node shows.
"""

from __future__ import annotations

from .. import terminal
from .captions import format_keywords
from .weights import format_weights


def subset_rows(a) -> list[dict]:
    """One row per scanned subset: images (or videos, with their frames), weight, repeats, items,
    share and target."""
    by_name = {b.name: b for b in a.plan.result.subsets} if a.plan.result else {}
    trained = {(d.is_reg, d.name): d for d in a.subsets}
    rows = []
    for s in a.scan.subsets:
        b = None if s.is_reg else by_name.get(s.name)
        d = trained.get((s.is_reg, s.name))
        repeats = d.repeats if d else 0
        rows.append(
            {
                "name": s.name,
                "folder": d.image_dir if d else s.folder,
                "dirname": s.dirname,
                "is_reg": s.is_reg,
                "link": s.link,
                "images": s.item_count,  # the files trained: images, or a video subset's videos
                "kind": s.kind,
                "videos": s.video_count,
                "frames": list(s.frame_range()),
                "fps": s.fps_values(),
                "captions": s.captions,
                "captions_missing": len(s.missing_captions),
                "corrupt": len(s.corrupt),
                "skipped": len(s.skipped),
                "folder_repeats": s.repeats,
                "weight": None if s.is_reg else a.plan.weights.get(s.name, 1.0),
                "repeats": repeats,
                "items": s.item_count * repeats,
                "share": b.share if b and d else 0.0,
                "target_share": b.target_share if b and d else 0.0,
                "error": b.error if b and d else 0.0,
                "excluded": d is None,
                "sizes": s.size_counts(),
                "control_dir": s.control_dir,
                "controls": len(s.controls),
                "without_control": len(s.without_control),
            }
        )
    return rows


def build_report(a) -> dict:
    """The JSON-ready report of an analysis (the preview route's answer)."""
    train_weights = {s.name: a.plan.weights.get(s.name, 1.0) for s in a.scan.train}
    return {
        "project_dir": a.scan.project_dir,
        "resolution": list(a.options.resolution),
        "enable_bucket": a.enable_bucket,
        "repeats_mode": a.mode,
        "subsets": subset_rows(a),
        "weights": train_weights,
        "weights_text": format_weights(train_weights),
        "balance": a.plan.result.to_dict() if a.plan.result and a.mode != "folders" else None,
        "issues": [i.to_dict() for i in a.issues],
        "errors": len(a.errors),
        "warnings": len(a.warnings),
        "ok": not a.errors,
        "steps": a.steps.to_dict(),
        "notes": list(a.notes),
        "keywords": [[k, n] for k, n in a.keywords],
    }


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def _table(rows: list[dict]) -> list[str]:
    width = min(40, max([len("subset")] + [len(r["name"]) + (4 if r["is_reg"] else 0) for r in rows]))
    lines = [
        f"{'subset':<{width}}  {'images':>6}  {'weight':>6}  {'repeats':>7}  {'items':>7}  {'share':>6}  {'target':>6}"
    ]
    for r in rows:
        name = ("reg " if r["is_reg"] else "") + terminal.shown(r["name"])
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
            f"{name:<{width}}  {r['images']:>6}  {weight:>6}  {r['repeats']:>7}  {r['items']:>7}  {share:>6}  {target:>6}"
        )
    return lines


def video_lines(rows: list[dict]) -> list[str]:
    """`Videos in Walk: 3 (33-81 frames, 16 fps), one item each per repeat` for each video subset."""
    out = []
    for r in rows:
        if r.get("kind") != "video":
            continue
        low, high = r["frames"]
        frames = "frames not read" if not high else f"{low} frames" if low == high else f"{low}-{high} frames"
        fps = ", ".join(f"{f:g}" for f in r["fps"])
        rate = f", {fps} fps" if fps else ""
        out.append(
            f"Videos in {terminal.shown(r['name'])}: {r['videos']} ({frames}{rate}), one item each per repeat"
        )
    return out


def steps_line(st: dict) -> str:
    """`Steps: 110 items / batch 1 = 110 steps per epoch x 23 epochs = 2530 steps (target 2500: 30 over)`."""
    line = f"Steps: {st['train_items']} items"
    if st["regularization"]:
        line += f" x2 (regularization) = {st['items_per_epoch']}"
    line += (
        f" / batch {st['batch_size']} = {st['steps_per_epoch']} steps per epoch x {st['epochs']} "
        f"epochs = {st['total_steps']} steps"
    )
    if st.get("target_steps"):
        off = st["total_steps"] - st["target_steps"]
        how = "exactly" if off == 0 else f"{abs(off)} {'over' if off > 0 else 'under'}"
        line += f" (target {st['target_steps']}: {how}"
        line += f"; repeats scaled {st['scale']})" if st.get("scale") else ")"
    return line


def summary_text(
    report: dict,
    *,
    mode: str | None = None,
    toml_path: str | None = None,
    dry_run: bool = False,
    notes: list[str] | None = None,
) -> str:
    """The readable table the node shows and the CLI prints."""
    lines: list[str] = [f"Dataset {report['project_dir']}"]
    w, h = report["resolution"]
    head = f"resolution {w}x{h}, buckets {'on' if report['enable_bucket'] else 'off'}, repeats {report['repeats_mode']}"
    if mode:
        head += f", mode {mode}"
    if toml_path:
        head += f", config {toml_path}" + (" (dry run: nothing written)" if dry_run else "")
    lines.append(head)
    lines += _table(report["subsets"])
    lines += video_lines(report["subsets"])
    lines.append(steps_line(report["steps"]))
    bal = report.get("balance")
    if bal:
        lines.append(
            f"Balance: {'exact' if bal['exact'] else 'closest'} shares, max error "
            f"{100 * bal['max_error']:.2f}% (budget {bal['budget']} items per epoch)"
        )
    for severity, title in (("error", "Errors"), ("warning", "Warnings")):
        found = [i for i in report["issues"] if i["severity"] == severity]
        if found:
            lines.append(f"{title} ({len(found)}):")
            lines += [f"  - {i['message']}" for i in found]
    lines += list(report.get("notes") or []) + list(notes or [])
    kws = [(k, n) for k, n in report["keywords"]]
    lines.append(f"Keywords ({len(kws)} distinct): " + (format_keywords(kws) if kws else "none"))
    return "\n".join(lines)
