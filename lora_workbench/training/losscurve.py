"""Draw a training loss curve (raw avr_loss and an EMA-smoothed line) as an image, with PIL only.

Used for the training node's IMAGE output and for the PNG saved beside the LoRA. NaN losses (the
classic fp16 failure) leave gaps in the line and are counted in the corner, never hidden.
"""

from __future__ import annotations

import math
from pathlib import Path

BG = (30, 31, 35)
GRID = (58, 60, 66)
AXIS = (120, 122, 130)
TEXT = (215, 217, 222)
RAW = (95, 135, 185)
EMA = (255, 166, 64)
BAD = (235, 80, 80)


def ema(values: list[float], weight: float | None = None) -> list[float]:
    """TensorBoard-style debiased exponential moving average; NaN/inf inputs keep the previous value."""
    n = len(values)
    if weight is None:
        weight = 0.0 if n < 3 else min(0.95, 1.0 - 4.0 / max(n, 5))
    out: list[float] = []
    acc, count = 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(out[-1] if out else math.nan)
            continue
        count += 1
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight**count) if weight else v)
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def loss_curve_rgb(losses: list[tuple[int, float]], width: int = 640, height: int = 320, title: str = ""):  # noqa: C901 (cut into steps pending)
    """A PIL RGB image of the curve: axes with ticks, the raw line, the EMA line, min/max labels."""
    from PIL import Image, ImageDraw

    width, height = max(160, int(width)), max(120, int(height))
    img = Image.new("RGB", (width, height), BG)
    d = ImageDraw.Draw(img)
    font, small = _font(13), _font(11)
    left, right, top, bottom = 58, 14, 26, 32
    x0, y0, x1, y1 = left, top, width - right, height - bottom
    points = [(int(s), float(v)) for s, v in losses]
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    nan_count = len(points) - len(finite)

    d.text((x0, 6), title or "loss", fill=TEXT, font=font)
    legend_x = x1 - 120
    d.line([(legend_x, 13), (legend_x + 16, 13)], fill=RAW, width=2)
    d.text((legend_x + 20, 6), "raw", fill=TEXT, font=small)
    d.line([(legend_x + 52, 13), (legend_x + 68, 13)], fill=EMA, width=2)
    d.text((legend_x + 72, 6), "EMA", fill=TEXT, font=small)
    d.rectangle([x0, y0, x1, y1], outline=AXIS)

    if not finite:
        msg = "no loss values yet" if not points else f"loss is NaN at all {len(points)} steps"
        d.text(((x0 + x1) // 2 - 60, (y0 + y1) // 2 - 6), msg, fill=BAD if points else TEXT, font=font)
        return img

    steps = [s for s, _ in points]
    smin, smax = min(steps), max(steps)
    vmin = min(v for _, v in finite)
    vmax = max(v for _, v in finite)
    span = vmax - vmin
    pad = span * 0.08 if span > 0 else (abs(vmax) * 0.1 or 0.5)
    lo, hi = vmin - pad, vmax + pad

    def px(step: int) -> float:
        return x0 + 4 + (x1 - x0 - 8) * ((step - smin) / (smax - smin) if smax > smin else 0.5)

    def py(v: float) -> float:
        return y1 - (y1 - y0) * (v - lo) / (hi - lo)

    for i in range(5):  # horizontal grid with value labels
        v = lo + (hi - lo) * i / 4
        y = py(v)
        if 0 < i < 4:
            d.line([(x0 + 1, y), (x1 - 1, y)], fill=GRID)
        label = _fmt(v)
        d.text((x0 - 6 - d.textlength(label, font=small), y - 6), label, fill=TEXT, font=small)
    ticks = sorted({smin, smax, (smin + smax) // 2}) if smax > smin else [smin]
    for s in ticks:
        x = px(s)
        d.line([(x, y1), (x, y1 + 4)], fill=AXIS)
        label = str(s)
        d.text((x - d.textlength(label, font=small) / 2, y1 + 6), label, fill=TEXT, font=small)
    d.text((x1 - d.textlength("step", font=small), height - 13), "step", fill=AXIS, font=small)

    def polyline(vals: list[float], color, w: int) -> None:
        run: list[tuple[float, float]] = []
        for s, v in zip(steps, vals, strict=True):
            if math.isfinite(v):
                run.append((px(s), py(v)))
            else:
                if len(run) > 1:
                    d.line(run, fill=color, width=w, joint="curve")
                run = []
        if len(run) > 1:
            d.line(run, fill=color, width=w, joint="curve")
        elif len(run) == 1:
            x, y = run[0]
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)

    raw_vals = [v for _, v in points]
    polyline(raw_vals, RAW, 1)
    polyline(ema(raw_vals), EMA, 2)
    for s, v in points:
        if not math.isfinite(v):
            x = px(s)
            d.line([(x, y1 - 6), (x, y1 - 1)], fill=BAD)

    # min / max labels at their points (ends of the range keep the label inside the plot).
    smin_pt = min(finite, key=lambda p: p[1])
    smax_pt = max(finite, key=lambda p: p[1])
    for (s, v), name, dy in ((smin_pt, "min", 4), (smax_pt, "max", -16)):
        if name == "max" and smax_pt == smin_pt:
            continue
        x, y = px(s), py(v)
        d.ellipse([x - 3, y - 3, x + 3, y + 3], outline=TEXT)
        label = f"{name} {_fmt(v)} @ {s}"
        tw = d.textlength(label, font=small)
        tx = min(max(x - tw / 2, x0 + 3), x1 - tw - 3)
        ty = min(max(y + dy, y0 + 2), y1 - 14)
        d.text((tx, ty), label, fill=TEXT, font=small)
    last = f"last {_fmt(finite[-1][1])}"
    if nan_count:
        last += f" · NaN at {nan_count} step{'s' if nan_count != 1 else ''}"
    d.text(
        (x0 + 40 + d.textlength(title or "loss", font=font), 7),
        last,
        fill=BAD if nan_count else AXIS,
        font=small,
    )
    return img


def render_loss_png(
    losses: list[tuple[int, float]], path, width: int = 640, height: int = 320, title: str = ""
) -> str:
    """Write the curve as a PNG at `path` (folders created); returns the path as a string."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    loss_curve_rgb(losses, width, height, title).save(p, format="PNG")
    return str(p)
