"""Sample prompt lines as sd-scripts reads them from the prompts file, and the options that may not pass.

sd-scripts (`train_util.load_prompts`, `line_to_prompt_dict` at 48d368fa) reads prompts.txt line by
line (universal newlines, each line stripped, `#` lines skipped), splits a line at every " --" and
matches each part, the prompt itself included, against its options case-insensitively. One option
names a file: `--cn PATH`, a ControlNet image that `sample_image_inference` (SD, SDXL) and FLUX's
sampler open with PIL whatever the path: from a shared workflow, a file-existence oracle, and a FIFO
hangs the run. The pack trains no ControlNet, so a line with that option is refused, not confined.
The other options (w h d s l g n ss ctr rcfg fs) hold numbers or text and stay the user's to give.
musubi-tuner (`training/sampling_prompts.py` `line_to_prompt_dict` at 30c658c4) reads the same way and
opens more files: `--i` (the first frame), `--ei` (the end frame), `--ci` (a control image) and `--cn`
(a control video); its backend checks its lines against MUSUBI_FILE_OPTIONS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import ValidationError

# An option that makes sd-scripts open a file: what `re.match(r"cn (.+)", part, re.I)` takes.
FILE_OPTIONS = {"cn": "a ControlNet image file"}
MUSUBI_FILE_OPTIONS = {
    "i": "an image file (the sample's first frame)",
    "ei": "an image file (the sample's end frame)",
    "ci": "a control image file",
    "cn": "a control video file",
}


def _option_rx(options: Mapping[str, str]) -> re.Pattern:
    return re.compile("(" + "|".join(map(re.escape, options)) + ") ", re.IGNORECASE)


def lines(text: str) -> list[str]:
    """The prompts as the pack writes them: one per line, NULs dropped, stripped, blanks and `#` lines
    left out. str.splitlines splits on every line break readlines() does, and more, so no line written
    holds a break sd-scripts would split on."""
    return [line for _n, line in _numbered(text)]


def _numbered(text: str) -> list[tuple[int, str]]:
    cleaned = ((n, raw.replace("\x00", "").strip()) for n, raw in enumerate(text.splitlines(), 1))
    return [(n, line) for n, line in cleaned if line and not line.startswith("#")]


def check_line(
    line: str, where: str, options: Mapping[str, str] = FILE_OPTIONS, trainer: str = "sd-scripts"
) -> None:
    """Refuse a prompt line any part of which the trainer would read as an option naming a file
    (`options`: the trainer's, option -> what it opens)."""
    rx = _option_rx(options)
    for i, part in enumerate(line.split(" --")):
        m = rx.match(part)
        if m is None:
            continue
        # re's IGNORECASE (the trainers' too) lets "İ" and "ı" stand for "i": find the option as re does
        what = next(v for k, v in options.items() if re.fullmatch(re.escape(k), m[1], re.IGNORECASE))
        said = f"the option --{m[1]}" if i else f"its start {m[1]!r} (which {trainer} reads as --{m[1]})"
        raise ValidationError(
            f"{where}: {said} makes {trainer} open {what} ({part[m.end() :]!r}); sample prompts "
            f"may not name files here: remove it{'' if i else ' or reword the start of the prompt'}."
        )


def check(text: str, setting: str = "sample_prompts") -> None:
    """Every line of a sample prompts text, checked (check_line); the line is named by its number."""
    for n, line in _numbered(text):
        check_line(line, f"{setting} line {n}")
