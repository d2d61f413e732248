"""Adam and Polyak averaging over a pathway's own entries, and the catch-up of the entries they skip.

Why: with a frozen (or slowly changing) mask, running torch's Adam over every entry of a network and
Polyak over every entry of its target costs as much as the pathway's multiply-adds (issue 34). The
entries outside the pathway get an exactly-zero gradient, so what a dense step does to them is known
in advance: Adam decays their moments and, where the first moment is non-zero (an entry that left the
pathway with its moments kept, ``--adam-on-change keep``), moves the weight; the target's copy is
pulled towards the critic's. `catch_up` replays exactly those updates in one pass when something is
about to read the entries outside the pathway (a mask update's dense scoring, a checkpoint).

Formulas are torch's Adam (``exp_avg = β1·m + (1-β1)·g``, ``exp_avg_sq = β2·v + (1-β2)·g²``, the
parameter moves by ``lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)``) and ``torch.lerp`` with a weight
below 0.5 (``t + τ·(s - t)``); results agree with torch's to float rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def adam_entries(idx, p, g, m, v, step_size, bc2_sqrt, b1, b2, eps):  # pragma: no cover - compiled
    """One Adam step of the entries ``idx`` of the flat parameter ``p`` (moments ``m``, ``v`` flat like
    ``p``) with gradient ``g[k]`` for entry ``idx[k]``."""
    for k in range(g.shape[0]):
        i = idx[k]
        gk = g[k]
        mk = b1 * m[i] + (1.0 - b1) * gk
        vk = b2 * v[i] + (1.0 - b2) * gk * gk
        m[i] = mk
        v[i] = vk
        p[i] -= step_size * mk / (np.sqrt(vk) / bc2_sqrt + eps)


@njit(cache=True, nogil=True)
def lerp_entries(idx, target, source, tau):  # pragma: no cover - compiled
    """target[i] += τ·(source[i] - target[i]) for the entries ``idx``."""
    for k in range(idx.shape[0]):
        i = idx[k]
        target[i] += tau * (source[i] - target[i])


@njit(cache=True, nogil=True)
def lerp_all(target, source, tau):  # pragma: no cover - compiled
    for i in range(target.shape[0]):
        target[i] += tau * (source[i] - target[i])


@njit(cache=True, nogil=True)
def catch_up(active, p, m, v, step_sizes, bc2_sqrts, b1, b2, eps, target, polyak, tau):  # pragma: no cover
    """Replay ``len(step_sizes)`` skipped updates on the entries outside the pathway (``active`` False):
    at update ``i`` an Adam step with zero gradient (``step_sizes[i]``, ``bc2_sqrts[i]``: that step's
    bias corrections), then, where ``polyak[i]`` and a ``target`` is given (non-empty), the target's
    entry is pulled towards the parameter's. Entries whose moments are zero and whose target equals
    the parameter are left alone: every skipped update leaves them as they are."""
    n = step_sizes.shape[0]
    has_target = target.shape[0] > 0
    for e in range(p.shape[0]):
        if active[e]:
            continue
        me, ve, pe = m[e], v[e], p[e]
        te = target[e] if has_target else pe
        if me == 0.0 and ve == 0.0 and te == pe:
            continue
        for i in range(n):
            if me != 0.0 or ve != 0.0:
                me = b1 * me
                ve = b2 * ve
                if me != 0.0:
                    pe -= step_sizes[i] * me / (np.sqrt(ve) / bc2_sqrts[i] + eps)
            if has_target and polyak[i]:
                te += tau * (pe - te)
        m[e], v[e], p[e] = me, ve, pe
        if has_target:
            target[e] = te


def bias_corrections(steps: np.ndarray, b1: float, b2: float, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Adam's step size ``lr/(1-β1^t)`` and ``sqrt(1-β2^t)`` for each step count ``t`` of ``steps``."""
    t = np.asarray(steps, dtype=np.float64)
    return lr / (1.0 - b1 ** t), np.sqrt(1.0 - b2 ** t)
