"""What the training node's progress bar previews: the newest sample as soon as it exists, else the loss
curve while it grows, at most every few seconds, and a half-written sample is tried again."""

from __future__ import annotations

from types import SimpleNamespace

from PIL import Image

from lora_workbench.training.preview import LOSS_SIZE, PreviewPicker


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def status(losses=(), samples=()):
    return SimpleNamespace(losses=list(losses), samples=list(samples))


def test_the_loss_curve_is_previewed_once_there_are_two_points_then_at_most_every_interval():
    clock = Clock()
    picker = PreviewPicker(interval=5.0, clock=clock)
    assert picker.next_image(status([(1, 0.5)])) is None
    img = picker.next_image(status([(1, 0.5), (2, 0.4)]))
    assert img is not None and img.size == LOSS_SIZE and img.mode == "RGB"
    clock.t += 1
    assert picker.next_image(status([(1, 0.5), (2, 0.4), (3, 0.3)])) is None  # too soon
    clock.t += 5
    assert picker.next_image(status([(1, 0.5), (2, 0.4), (3, 0.3)])) is not None
    clock.t += 10
    assert picker.next_image(status([(1, 0.5), (2, 0.4), (3, 0.3)])) is None  # nothing new


def test_a_new_sample_wins_at_once_and_stays(tmp_path):
    clock = Clock()
    picker = PreviewPicker(interval=5.0, clock=clock)
    first = tmp_path / "e1.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(first)
    losses = [(1, 0.5), (2, 0.4)]
    img = picker.next_image(status(losses, [str(first)]))
    assert img.size == (64, 48) and img.getpixel((0, 0)) == (200, 10, 10)
    clock.t += 60
    assert picker.next_image(status(losses + [(3, 0.2)], [str(first)])) is None  # the sample stays
    second = tmp_path / "e2.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(second)
    assert picker.next_image(status(losses, [str(first), str(second)])).getpixel((0, 0)) == (10, 200, 10)


def test_a_half_written_sample_is_tried_again(tmp_path):
    picker = PreviewPicker()
    sample = tmp_path / "e1.png"
    sample.write_bytes(b"\x89PNG\r\n\x1a\n")  # the header only: sd-scripts is still writing
    assert picker.next_image(status([], [str(sample)])) is None
    Image.new("RGB", (8, 8)).save(sample)
    assert picker.next_image(status([], [str(sample)])) is not None
