"""How many repeats each training subset gets, three ways.

- `folders` (the default): the `N_` prefix of each folder, exactly as named (kohya's own convention;
  a folder without one counts as 1, a `0_` folder is left out).
- `equal`: every subset the same share of an epoch, whatever its image count (15 images x1 and
  5 images x3 count the same), balanced by balance.py.
- `weights`: the `Subject: weight` text (weights.py) sets each subset's share, balanced by balance.py.

A workflow saved before the modes existed has no mode: `resolve_mode` gives it `weights` when weights
were typed in and `folders` when the text is empty, so such workflows keep training what they did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import balance
from .scan import ProjectScan, SubsetScan
from .weights import parse_weights, subject_key

FOLDERS, EQUAL, WEIGHTS = "folders", "equal", "weights"
REPEAT_MODES = (FOLDERS, EQUAL, WEIGHTS)


def resolve_mode(mode: str | None, weights_text: str | None) -> str:
    """The mode to use: the one given, else `weights` when weights are typed in, else `folders`."""
    if mode is None or mode == "":
        return WEIGHTS if weights_text and weights_text.strip() else FOLDERS
    if mode not in REPEAT_MODES:
        raise ValueError(f"Unknown repeats mode {mode!r}; use one of {', '.join(REPEAT_MODES)}.")
    return mode


@dataclass
class RepeatsPlan:
    """Repeats per training subset (0 = left out) and the shares they give."""

    mode: str
    weights: dict[str, float]  # subset name -> the weight used (folders: the share its repeats give)
    result: balance.BalanceResult | None  # rows per usable subset: repeats, shares, targets
    notes: list[str] = field(default_factory=list)  # warnings for the report

    @property
    def repeats(self) -> dict[str, int]:
        return self.result.repeats if self.result else {}


def given_weights(scan: ProjectScan, weights: dict[str, float]) -> dict[str, float]:
    """Weight per training subset in `weights` mode: the given one, else 0 for a `0_` folder, else 1."""
    out = {}
    for s in scan.train:
        key = subject_key(s.name)
        out[s.name] = float(weights[key]) if key in weights else (0.0 if s.repeats == 0 else 1.0)
    return out


def plan_repeats(
    scan: ProjectScan, mode: str, weights_text: str | None, budget: int | None, distance=None
) -> RepeatsPlan:
    """The repeats the mode gives for the scanned subsets (weights text errors raise ValidationError).

    `distance(items per epoch)`, when planning by total steps, lets shares that cannot be exact trade
    a little precision (balance.TARGET_SLACK) for a total closer to the target.
    """
    usable = [s for s in scan.train if s.item_count > 0 and not s.error]
    if mode == FOLDERS:
        return _from_folders(scan, usable)
    weights = parse_weights(weights_text) if mode == WEIGHTS else {}
    eff = given_weights(scan, weights)
    if mode == EQUAL:
        eff = {s.name: (0.0 if s.repeats == 0 else 1.0) for s in scan.train}
    counts = {s.name: s.item_count for s in usable}
    chosen = {n: eff[n] for n in counts}
    if not counts:
        result = None
    elif distance is None:
        result = balance.balance_repeats(counts, chosen, budget)
    else:
        result = balance.balance_near_total(counts, chosen, budget, distance)
    notes = list(result.notes) if result else []
    return RepeatsPlan(mode, eff, result, notes)


def _from_folders(scan: ProjectScan, usable: list[SubsetScan]) -> RepeatsPlan:
    reps = {s.name: (1 if s.repeats is None else s.repeats) for s in usable}
    items = {n: r * next(s.item_count for s in usable if s.name == n) for n, r in reps.items()}
    total = sum(items.values())
    rows = []
    for s in usable:
        share = items[s.name] / total if total else 0.0
        excluded = reps[s.name] <= 0
        rows.append(
            balance.SubsetBalance(s.name, s.item_count, share, reps[s.name], share, share, 0.0, excluded)
        )
    result = balance.BalanceResult(rows, total, max(total, 1), exact=True)
    return RepeatsPlan(FOLDERS, _implied_weights(scan, items), result)


def _implied_weights(scan: ProjectScan, items: dict[str, int]) -> dict[str, float]:
    """The weights that give the folders' shares (smallest 1), for the editor's sliders."""
    low = min((v for v in items.values() if v > 0), default=1)
    g = math.gcd(*[v for v in items.values() if v > 0]) if any(items.values()) else 1
    unit = g if low / g <= 100 else low
    return {s.name: round(items.get(s.name, 0) / unit, 2) for s in scan.train}


def scaled(result: balance.BalanceResult, repeats: dict[str, int]) -> balance.BalanceResult:
    """The same rows with new repeats (a step plan scaled them; shares are unchanged by a common factor)."""
    rows = [
        balance.SubsetBalance(
            r.name,
            r.images,
            r.weight,
            repeats.get(r.name, r.repeats),
            r.target_share,
            r.share,
            r.error,
            r.excluded,
            r.empty,
        )
        for r in result.subsets
    ]
    total = sum(r.items for r in rows if not r.excluded and not r.empty)
    return balance.BalanceResult(
        rows, total, result.budget, result.exact, result.over_budget, list(result.notes)
    )
