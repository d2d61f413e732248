"""How many weights each layer gets: uniform or Erdős–Rényi-Kernel (ERK) allocation.

Dynamic sparse training (SET, RigL, RLx2) fixes a per-layer count at the start and keeps it
through every drop/grow step. ERK gives a layer of shape (n_out, n_in) the density
ε·(n_in + n_out)/(n_in·n_out): small layers (the input and output layers of an RL MLP) stay
denser, the wide hidden layer carries most of the sparsity. ε is solved so that the total
equals ⌊keep·N⌋; a layer whose density would exceed 1 is made dense and ε solved again
(as in RigL's ``get_sparsities_erdos_renyi`` and RLx2's ``sparse_set``). Counts are then
rounded so that their sum is *exactly* the budget.
"""

from __future__ import annotations

import math

DISTRIBUTIONS = ("erk", "uniform")


def layer_counts(shapes: dict[str, tuple[int, int]], keep_ratio: float,
                 distribution: str = "erk") -> dict[str, int]:
    """Active weights per layer for ``shapes`` (name → (out, in)) at ``keep_ratio``.

    Raises ValueError when the ratio leaves some layer with no weight at all: a layer
    without a connection cuts the network in two, and no drop/grow step can repair that.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep ratio must be in (0, 1], got {keep_ratio}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown sparsity distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    sizes = {n: o * i for n, (o, i) in shapes.items()}
    total = sum(sizes.values())
    budget = max(1, int(keep_ratio * total))
    if distribution == "uniform":
        raw = {n: keep_ratio * s for n, s in sizes.items()}
    else:
        raw = _erk(shapes, sizes, budget)
    counts = _round_to_budget(raw, sizes, budget)
    empty = [n for n, c in counts.items() if c < 1]
    if empty:
        raise ValueError(f"keep ratio {keep_ratio:g} leaves layer {empty[0]} "
                         f"({shapes[empty[0]][1]}→{shapes[empty[0]][0]}) without a single weight "
                         f"under {distribution} allocation; raise the keep ratio")
    return counts


def _erk(shapes: dict[str, tuple[int, int]], sizes: dict[str, int], budget: int) -> dict[str, float]:
    dense: set[str] = set()
    while True:
        free = budget - sum(sizes[n] for n in dense)
        raw_sum = sum(o + i for n, (o, i) in shapes.items() if n not in dense)
        if raw_sum == 0:
            return {n: float(sizes[n]) for n in shapes}
        eps = free / raw_sum
        over = [n for n, (o, i) in shapes.items() if n not in dense and eps * (o + i) > sizes[n]]
        if not over:
            return {n: float(sizes[n]) if n in dense else eps * (o + i) for n, (o, i) in shapes.items()}
        dense.update(over)


def _round_to_budget(raw: dict[str, float], sizes: dict[str, int], budget: int) -> dict[str, int]:
    """Floor every share, then hand the remainder to the largest fractional parts (ties by
    layer order), never past a layer's size."""
    counts = {n: min(sizes[n], math.floor(v)) for n, v in raw.items()}
    left = budget - sum(counts.values())
    order = sorted(raw, key=lambda n: -(raw[n] - math.floor(raw[n])))
    while left > 0:
        progressed = False
        for n in order:
            if left == 0:
                break
            if counts[n] < sizes[n]:
                counts[n] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return counts
