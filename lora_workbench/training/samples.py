"""The sample images of a run's last sampling round (the last epoch's, usually), read from the names
sd-scripts gives them: `<output_name>_e000003_00_20251011120000.png` (after epoch 3, prompt 0) or
`<output_name>_000120_01_....png` (after step 120)."""

from __future__ import annotations

import os
import re
from pathlib import Path

_NAME = re.compile(
    r"(?:^|_)(?P<epoch>e?)(?P<n>\d{6})_(?P<prompt>\d{2})_\d{14}(?:_\d+)?\.(?:png|jpe?g|webp)$", re.I
)


def sampling_round(name: str) -> tuple[str, int, int] | None:
    """("epoch" | "step", number, prompt index) from a sample file name; None for other names."""
    m = _NAME.search(name)
    if m is None:
        return None
    return ("epoch" if m["epoch"] else "step", int(m["n"]), int(m["prompt"]))


def last_round(paths: list[str]) -> list[str]:
    """The samples of the newest sampling round, in prompt order: the round of the newest file."""
    rounds: dict[tuple[str, int], list[tuple[int, str]]] = {}
    newest: tuple[float, tuple[str, int]] | None = None
    for p in paths:
        parsed = sampling_round(os.path.basename(p))
        if parsed is None:
            continue
        key = parsed[:2]
        rounds.setdefault(key, []).append((parsed[2], p))
        try:
            mtime = Path(p).stat().st_mtime
        except OSError:
            continue
        if newest is None or (mtime, key) > newest:
            newest = (mtime, key)
    if newest is None:
        return []
    return [p for _i, p in sorted(rounds[newest[1]])]
