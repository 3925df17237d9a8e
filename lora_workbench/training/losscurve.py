"""Draw a training loss curve (raw avr_loss and an EMA-smoothed line) as an image, with PIL only.

Used for the training node's IMAGE output and for the PNG saved beside the LoRA. NaN losses (the
classic fp16 failure) leave gaps in the line and are counted in the corner, never hidden.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import disk

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


@dataclass(frozen=True)
class _Frame:
    """The plot box in pixels and the value range it shows: where a (step, loss) point is drawn."""

    x0: int
    y0: int
    x1: int
    y1: int
    smin: int = 0
    smax: int = 0
    lo: float = 0.0
    hi: float = 1.0

    def px(self, step: int) -> float:
        span = (step - self.smin) / (self.smax - self.smin) if self.smax > self.smin else 0.5
        return self.x0 + 4 + (self.x1 - self.x0 - 8) * span

    def py(self, v: float) -> float:
        return self.y1 - (self.y1 - self.y0) * (v - self.lo) / (self.hi - self.lo)


@dataclass(frozen=True)
class _Pen:
    """The drawing surface and its two fonts."""

    d: Any  # PIL ImageDraw
    font: Any
    small: Any

    def text(self, xy, text: str, fill, small: bool = True) -> None:
        self.d.text(xy, text, fill=fill, font=self.small if small else self.font)

    def width(self, text: str, small: bool = True) -> float:
        return self.d.textlength(text, font=self.small if small else self.font)


def loss_curve_rgb(losses: list[tuple[int, float]], width: int = 640, height: int = 320, title: str = ""):
    """A PIL RGB image of the curve: axes with ticks, the raw line, the EMA line, min/max labels."""
    from PIL import Image, ImageDraw

    width, height = max(160, int(width)), max(120, int(height))
    img = Image.new("RGB", (width, height), BG)
    pen = _Pen(ImageDraw.Draw(img), _font(13), _font(11))
    box = _Frame(58, 26, width - 14, height - 32)
    points = [(int(s), float(v)) for s, v in losses]
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    _draw_header(pen, box, title)
    if not finite:
        _draw_no_values(pen, box, points)
        return img
    frame = _fit(box, points, finite)
    _draw_axes(pen, frame, height)
    _draw_lines(pen, frame, points)
    _draw_extremes(pen, frame, finite)
    _draw_last(pen, frame, finite[-1][1], len(points) - len(finite), title)
    return img


def _draw_header(pen: _Pen, box: _Frame, title: str) -> None:
    """The title, the legend and the plot's outline."""
    pen.text((box.x0, 6), title or "loss", TEXT, small=False)
    legend_x = box.x1 - 120
    pen.d.line([(legend_x, 13), (legend_x + 16, 13)], fill=RAW, width=2)
    pen.text((legend_x + 20, 6), "raw", TEXT)
    pen.d.line([(legend_x + 52, 13), (legend_x + 68, 13)], fill=EMA, width=2)
    pen.text((legend_x + 72, 6), "EMA", TEXT)
    pen.d.rectangle([box.x0, box.y0, box.x1, box.y1], outline=AXIS)


def _draw_no_values(pen: _Pen, box: _Frame, points: list) -> None:
    msg = "no loss values yet" if not points else f"loss is NaN at all {len(points)} steps"
    xy = ((box.x0 + box.x1) // 2 - 60, (box.y0 + box.y1) // 2 - 6)
    pen.text(xy, msg, BAD if points else TEXT, small=False)


def _fit(box: _Frame, points: list, finite: list) -> _Frame:
    """The frame showing every step and the finite losses with a margin (a flat line gets one too)."""
    steps = [s for s, _ in points]
    vmin = min(v for _, v in finite)
    vmax = max(v for _, v in finite)
    span = vmax - vmin
    pad = span * 0.08 if span > 0 else (abs(vmax) * 0.1 or 0.5)
    return dataclasses.replace(box, smin=min(steps), smax=max(steps), lo=vmin - pad, hi=vmax + pad)


def _draw_axes(pen: _Pen, f: _Frame, height: int) -> None:
    """Horizontal grid lines with value labels, step ticks and the axis name."""
    for i in range(5):
        v = f.lo + (f.hi - f.lo) * i / 4
        y = f.py(v)
        if 0 < i < 4:
            pen.d.line([(f.x0 + 1, y), (f.x1 - 1, y)], fill=GRID)
        label = _fmt(v)
        pen.text((f.x0 - 6 - pen.width(label), y - 6), label, TEXT)
    ticks = sorted({f.smin, f.smax, (f.smin + f.smax) // 2}) if f.smax > f.smin else [f.smin]
    for s in ticks:
        x = f.px(s)
        pen.d.line([(x, f.y1), (x, f.y1 + 4)], fill=AXIS)
        label = str(s)
        pen.text((x - pen.width(label) / 2, f.y1 + 6), label, TEXT)
    pen.text((f.x1 - pen.width("step"), height - 13), "step", AXIS)


def _draw_lines(pen: _Pen, f: _Frame, points: list) -> None:
    """The raw line, the EMA line over it, and a red tick under every NaN step."""
    steps = [s for s, _ in points]
    raw_vals = [v for _, v in points]
    _polyline(pen, f, steps, raw_vals, RAW, 1)
    _polyline(pen, f, steps, ema(raw_vals), EMA, 2)
    for s, v in points:
        if not math.isfinite(v):
            x = f.px(s)
            pen.d.line([(x, f.y1 - 6), (x, f.y1 - 1)], fill=BAD)


def _polyline(pen: _Pen, f: _Frame, steps: list, vals: list[float], color, w: int) -> None:
    """A line through the finite values, broken at NaN; a lone point is a dot."""
    run: list[tuple[float, float]] = []
    for s, v in zip(steps, vals, strict=True):
        if math.isfinite(v):
            run.append((f.px(s), f.py(v)))
            continue
        if len(run) > 1:
            pen.d.line(run, fill=color, width=w, joint="curve")
        run = []
    if len(run) > 1:
        pen.d.line(run, fill=color, width=w, joint="curve")
    elif len(run) == 1:
        x, y = run[0]
        pen.d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)


def _draw_extremes(pen: _Pen, f: _Frame, finite: list) -> None:
    """min / max labels at their points (ends of the range keep the label inside the plot)."""
    low = min(finite, key=lambda p: p[1])
    high = max(finite, key=lambda p: p[1])
    for (s, v), name, dy in ((low, "min", 4), (high, "max", -16)):
        if name == "max" and high == low:
            continue
        x, y = f.px(s), f.py(v)
        pen.d.ellipse([x - 3, y - 3, x + 3, y + 3], outline=TEXT)
        label = f"{name} {_fmt(v)} @ {s}"
        tw = pen.width(label)
        tx = min(max(x - tw / 2, f.x0 + 3), f.x1 - tw - 3)
        ty = min(max(y + dy, f.y0 + 2), f.y1 - 14)
        pen.text((tx, ty), label, TEXT)


def _draw_last(pen: _Pen, f: _Frame, last_value: float, nan_count: int, title: str) -> None:
    """The last loss beside the title, and how many steps were NaN."""
    last = f"last {_fmt(last_value)}"
    if nan_count:
        last += f" · NaN at {nan_count} step{'s' if nan_count != 1 else ''}"
    pen.text((f.x0 + 40 + pen.width(title or "loss", small=False), 7), last, BAD if nan_count else AXIS)


def render_loss_png(
    losses: list[tuple[int, float]], path, width: int = 640, height: int = 320, title: str = ""
) -> str:
    """Write the curve as a PNG at `path` (folders created; written whole or not at all: a full disk
    is DiskFull, never a 0-byte PNG); returns the path as a string."""
    import io

    p = Path(path)
    with disk.said_if_full(p):
        p.parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    loss_curve_rgb(losses, width, height, title).save(out, format="PNG")
    disk.write_atomic(p, out.getvalue())
    return str(p)
