"""The loss-curve image: PIL only, any number of points, NaN shown rather than hidden."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from lora_workbench.training.losscurve import EMA, RAW, ema, loss_curve_rgb, render_loss_png

REAL = [(1, 1.22), (2, 1.27), (3, 1.29), (4, 1.25), (5, 1.23), (6, 1.22), (7, 1.21), (8, 1.2)]


def colours(img: Image.Image) -> set[tuple[int, int, int]]:
    return {c for _, c in img.getcolors(maxcolors=1 << 20)}


def test_png_of_a_real_run_has_the_raw_and_smoothed_lines(tmp_path):
    path = render_loss_png(REAL, tmp_path / "out" / "loss.png", title="testlora")
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (640, 320)
    cs = colours(img.convert("RGB"))
    assert RAW in cs and EMA in cs


@pytest.mark.parametrize(
    "losses",
    [
        [],
        [(1, 0.5)],
        [(1, math.nan)],
        [(1, math.nan), (2, math.nan)],
        [(3, 1.0), (4, 1.0)],
        [(1, math.inf), (2, 0.3), (3, math.nan), (4, 0.2)],
    ],
)
def test_degenerate_curves_still_draw(losses):
    img = loss_curve_rgb(losses, width=320, height=160, title="x")
    assert img.mode == "RGB" and img.size == (320, 160)


def test_nan_steps_leave_a_gap_and_are_counted(tmp_path):
    many = [(i, 1.0 / i) for i in range(1, 200)]
    many[100] = (101, math.nan)
    img = loss_curve_rgb(many)
    assert (235, 80, 80) in colours(img)  # the NaN marker and the "NaN at 1 step" note
    assert (235, 80, 80) not in colours(loss_curve_rgb([(i, 1.0 / i) for i in range(1, 200)]))


def test_ema_smooths_and_skips_nan():
    vals = [1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0]
    smooth = ema(vals)
    assert smooth[0] == 1.0
    assert max(smooth[4:]) - min(smooth[4:]) < 2.0 * 0.8
    assert ema([1.0, math.nan, 2.0], weight=0.5)[1] == 1.0
    assert ema([]) == [] and ema([2.0]) == [2.0]
