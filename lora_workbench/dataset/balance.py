"""Weights -> repeats: integer num_repeats per subset so each subset's share of an epoch matches its weight.

A subset's share is images x repeats over the epoch's total. The exact answer gives repeats
proportional to weight / images (scaled to integers through gcd/lcm of fractions); when that needs more
items per epoch than the budget, the best approximation within the budget is searched over every
distinct rounding of a common scale, then polished by +-1 steps. Repeats are never 0 for a weight > 0.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

DEFAULT_MAX_ITEMS_PER_EPOCH = 10_000  # images x repeats per epoch; keeps a 1-epoch run under a few hours
_MAX_CANDIDATES = 200_000  # bound on the scale search (a pathological input still answers in ~1 s)
_EXACT_DENOMINATOR = 10_000  # weights are read as fractions with at most this denominator
_TINY = 5e-324  # the smallest float above 0: a weight that underflows still counts as above 0
TARGET_SLACK = 0.005  # planning by total steps may give up this much share precision (0.5 points)


@dataclass
class SubsetBalance:
    name: str
    images: int
    weight: float
    repeats: int  # 0 only when excluded (weight 0)
    target_share: float
    share: float
    error: float  # share - target_share
    excluded: bool = False  # weight 0
    empty: bool = False  # no images: kept out of the shares

    @property
    def items(self) -> int:
        return self.images * self.repeats

    def to_dict(self) -> dict:
        d = asdict(self)
        d["items"] = self.items
        return d


@dataclass
class BalanceResult:
    subsets: list[SubsetBalance]
    total_items: int
    budget: int
    exact: bool  # every share equals its target
    over_budget: bool = False  # even 1 repeat each exceeds the budget
    notes: list[str] = field(default_factory=list)

    @property
    def repeats(self) -> dict[str, int]:
        return {s.name: s.repeats for s in self.subsets}

    @property
    def max_error(self) -> float:
        return max((abs(s.error) for s in self.subsets if not s.excluded and not s.empty), default=0.0)

    @property
    def mean_error(self) -> float:
        errs = [abs(s.error) for s in self.subsets if not s.excluded and not s.empty]
        return sum(errs) / len(errs) if errs else 0.0

    def to_dict(self) -> dict:
        return {
            "subsets": [s.to_dict() for s in self.subsets],
            "total_items": self.total_items,
            "budget": self.budget,
            "exact": self.exact,
            "over_budget": self.over_budget,
            "max_error": self.max_error,
            "mean_error": self.mean_error,
            "notes": list(self.notes),
        }


def _check(counts: dict[str, int], weights: dict[str, float]) -> None:
    for name, c in counts.items():
        if int(c) < 0:
            raise ValueError(f"subset {name!r} has a negative image count {c}")
    for name, w in weights.items():
        if not math.isfinite(float(w)) or float(w) < 0:
            raise ValueError(f"subset {name!r} has weight {w}; weights must be finite and >= 0")


def share_errors(counts: list[int], repeats: list[int], targets: list[float]) -> list[float]:
    total = sum(c * r for c, r in zip(counts, repeats, strict=True))
    if total <= 0:
        return [-t for t in targets]
    return [c * r / total - t for c, r, t in zip(counts, repeats, targets, strict=True)]


def _score(counts, repeats, targets) -> tuple[float, float, int]:
    errs = share_errors(counts, repeats, targets)
    # max error first, then the sum, then fewer items per epoch
    return (
        round(max(abs(e) for e in errs), 12),
        round(sum(abs(e) for e in errs), 12),
        sum(c * r for c, r in zip(counts, repeats, strict=True)),
    )


def _exact(counts: list[int], weights: list[float]) -> list[int] | None:
    """The smallest integer repeats with repeats_i proportional to weight_i / count_i (weights scaled
    so the largest is 1); None when a weight is too small next to the others to be written exactly."""
    qs = [Fraction(w).limit_denominator(_EXACT_DENOMINATOR) / c for w, c in zip(weights, counts, strict=True)]
    if not all(qs):
        return None
    g_num = 0
    l_den = 1
    for q in qs:
        g_num = math.gcd(g_num, q.numerator)
        l_den = l_den * q.denominator // math.gcd(l_den, q.denominator)
    g = Fraction(g_num, l_den)
    return [int(q / g) for q in qs]


def _ratios(counts: list[int], weights: list[float], budget: int) -> list[float]:
    """Repeats per unit of scale, the smallest being 1. A ratio above the budget acts like the budget
    (no subset can get more repeats than that), which keeps tiny and huge weights finite."""
    raw = [max(w / c, _TINY) for w, c in zip(weights, counts, strict=True)]
    low = min(raw)
    cap = float(budget + 1)
    return [min(r / low, cap) for r in raw]


def _roundings(counts: list[int], qs: list[float], budget: int):
    """Every distinct repeats vector max(1, round(s * q_i)) for a growing scale s, within budget
    (one list, updated in place: copy what you keep)."""
    reps = [1] * len(counts)
    total = sum(counts)
    yield reps
    # r_i becomes k+1 when s passes (k + 0.5) / q_i, for k >= 1.
    heap = [(1.5 / q, i) for i, q in enumerate(qs)]
    heapq.heapify(heap)
    for _ in range(_MAX_CANDIDATES):
        if not heap:
            return
        s, i = heapq.heappop(heap)
        if total + counts[i] > budget:
            return  # totals only grow with s
        reps[i] += 1
        total += counts[i]
        heapq.heappush(heap, ((reps[i] + 0.5) / qs[i], i))
        # apply every change at the same scale together before yielding
        while heap and heap[0][0] == s:
            _, j = heapq.heappop(heap)
            if total + counts[j] > budget:
                return
            reps[j] += 1
            total += counts[j]
            heapq.heappush(heap, ((reps[j] + 0.5) / qs[j], j))
        yield reps


def _scale_search(counts: list[int], qs: list[float], targets: list[float], budget: int):
    """The best-scoring rounding within the budget."""
    best = None
    for reps in _roundings(counts, qs, budget):
        sc = _score(counts, reps, targets)
        if best is None or sc < best[0]:
            best = (sc, list(reps))
    return best


def _polish(counts, reps, targets, budget):
    """Greedy +-1 steps on single subsets while the score improves and the budget holds."""
    best = (_score(counts, reps, targets), list(reps))
    improved = True
    rounds = 0
    while improved and rounds < 100:
        improved = False
        rounds += 1
        for i in range(len(reps)):
            for d in (1, -1):
                cand = list(best[1])
                cand[i] += d
                if cand[i] < 1 or sum(c * r for c, r in zip(counts, cand, strict=True)) > budget:
                    continue
                sc = _score(counts, cand, targets)
                if sc < best[0]:
                    best = (sc, cand)
                    improved = True
    return best


def seed_repeats(counts: dict[str, int], weights: dict[str, float]) -> dict[str, int]:
    """The seed script's rule, for comparison: floor(weight x largest count / count), then / gcd.

    It can give 0 repeats (a large subset with a small weight) and rounds every subset down.
    """
    _check(counts, weights)
    names = list(counts)
    biggest = max((counts[n] for n in names), default=0)
    raw = {
        n: (math.floor(float(weights.get(n, 1.0)) * biggest / counts[n]) if counts[n] else 0) for n in names
    }
    g = 0
    for r in raw.values():
        g = math.gcd(g, r)
    return {n: (r // g if g else r) for n, r in raw.items()}


def evaluate(counts: dict[str, int], weights: dict[str, float], repeats: dict[str, int]) -> list[float]:
    """Share error (achieved - target) per subset with weight > 0 and images, for any repeats."""
    names = [n for n in counts if counts[n] > 0 and float(weights.get(n, 1.0)) > 0]
    wsum = sum(float(weights.get(n, 1.0)) for n in names) or 1.0
    targets = [float(weights.get(n, 1.0)) / wsum for n in names]
    return share_errors([counts[n] for n in names], [repeats.get(n, 0) for n in names], targets)


def balance_repeats(
    counts: dict[str, int], weights: dict[str, float], max_items_per_epoch: int | None = None
) -> BalanceResult:
    """Integer repeats per subset whose shares of the epoch come closest to the weight shares.

    `counts` maps subset name -> image count, `weights` subset name -> weight (missing = 1.0,
    0 = excluded). The epoch (sum of images x repeats) stays within `max_items_per_epoch`
    (default DEFAULT_MAX_ITEMS_PER_EPOCH) unless 1 repeat each already exceeds it. Any finite weights
    >= 0 work, however tiny or huge: they are scaled so the largest is 1 before anything else.
    """
    _check(counts, weights)
    budget = int(max_items_per_epoch) if max_items_per_epoch else DEFAULT_MAX_ITEMS_PER_EPOCH
    if budget < 1:
        raise ValueError("max_items_per_epoch must be >= 1")
    w = {n: float(weights.get(n, 1.0)) for n in counts}
    active = [n for n in counts if w[n] > 0 and counts[n] > 0]
    reps, targets, notes, over = _solve(active, counts, w, budget)
    cs = [int(counts[n]) for n in active]
    exact = bool(active) and all(abs(e) < 1e-12 for e in share_errors(cs, reps, targets))
    total = sum(c * r for c, r in zip(cs, reps, strict=True))
    out = _subset_rows(counts, w, dict(zip(active, zip(reps, targets, strict=True), strict=True)), total)
    return BalanceResult(out, total, budget, exact, over, notes)


def _solve(active: list[str], counts: dict[str, int], w: dict[str, float], budget: int):
    """(repeats, target shares, notes, over_budget) for the active subsets."""
    if not active:
        return [], [], [], False
    top = max(w[n] for n in active)
    scaled = [max(w[n] / top, _TINY) for n in active]  # the largest is 1: huge weights cannot overflow
    total_w = sum(scaled)
    targets = [x / total_w for x in scaled]
    cs = [int(counts[n]) for n in active]
    if sum(cs) > budget:
        note = (
            f"1 repeat per subset already gives {sum(cs)} items per epoch, over the budget of "
            f"{budget}; every subset gets 1 repeat."
        )
        return _polish(cs, [1] * len(cs), targets, sum(cs))[1], targets, [note], True
    exact = _exact(cs, scaled)
    exact_items = sum(c * r for c, r in zip(cs, exact, strict=True)) if exact else None
    if exact_items is not None and exact_items <= budget:
        return exact, targets, [], False
    best = _scale_search(cs, _ratios(cs, scaled, budget), targets, budget)
    best = _no_worse_than_seed(best, active, cs, w, targets, budget)
    reps = _polish(cs, best[1], targets, budget)[1]
    need = f"{exact_items} items per epoch" if exact_items else "more items per epoch than any budget"
    note = f"The exact repeats need {need}, over the budget of {budget}; this is the closest within it."
    return reps, targets, [note], False


def _no_worse_than_seed(best, active, cs, w, targets, budget):
    """The seed's rule wins when it is valid, within the budget and closer."""
    try:
        seed = seed_repeats(dict(zip(active, cs, strict=True)), {n: w[n] for n in active})
    except (OverflowError, ValueError):  # a weight x count beyond floats: the seed's rule cannot run
        return best
    seed_v = [seed[n] for n in active]
    if all(r >= 1 for r in seed_v) and sum(c * r for c, r in zip(cs, seed_v, strict=True)) <= budget:
        sc = _score(cs, seed_v, targets)
        if sc < best[0]:
            return (sc, seed_v)
    return best


def _subset_rows(counts, w, by_name, total) -> list[SubsetBalance]:
    out: list[SubsetBalance] = []
    for n, c in counts.items():
        if n in by_name:
            r, t = by_name[n]
            share = c * r / total if total else 0.0
            out.append(SubsetBalance(n, int(c), w[n], r, t, share, share - t))
        elif w[n] <= 0:
            out.append(SubsetBalance(n, int(c), w[n], 0, 0.0, 0.0, 0.0, excluded=True))
        else:  # no images: 1 repeat so the rule "weight > 0 -> repeats >= 1" holds, no share
            out.append(SubsetBalance(n, int(c), w[n], 1, 0.0, 0.0, 0.0, empty=True))
    return out


def balance_near_total(
    counts: dict[str, int],
    weights: dict[str, float],
    max_items_per_epoch: int | None,
    distance,
    slack: float = TARGET_SLACK,
) -> BalanceResult:
    """Like balance_repeats, but when the shares cannot be exact, the rounding whose items per epoch
    `distance(items)` likes best among those with shares within `slack` of the best possible ones.

    Used to plan by total steps: `distance` says how far a total of items per epoch lands from the
    target. Exact shares are returned as they are (the step plan scales them).
    """
    best = balance_repeats(counts, weights, max_items_per_epoch)
    if best.exact or best.over_budget or not best.total_items:
        return best
    rows = [r for r in best.subsets if not r.excluded and not r.empty]
    cs = [r.images for r in rows]
    targets = [r.target_share for r in rows]
    w = [max(r.weight, 0.0) for r in rows]
    top = max(w)
    qs = _ratios(cs, [max(x / top, _TINY) for x in w], best.budget)
    limit = best.max_error + slack
    pick = (distance(best.total_items), best.max_error, [r.repeats for r in rows])
    for reps in _roundings(cs, qs, best.budget):
        err = max(abs(e) for e in share_errors(cs, reps, targets))
        if err <= limit:
            cand = (distance(sum(c * r for c, r in zip(cs, reps, strict=True))), err)
            if cand < pick[:2]:
                pick = (*cand, list(reps))
    by_name = {r.name: (rep, r.target_share) for r, rep in zip(rows, pick[2], strict=True)}
    total = sum(c * r for c, r in zip(cs, pick[2], strict=True))
    w_all = {n: float(weights.get(n, 1.0)) for n in counts}
    return BalanceResult(
        _subset_rows(counts, w_all, by_name, total), total, best.budget, False, False, best.notes
    )
