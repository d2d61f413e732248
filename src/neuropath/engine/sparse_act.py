"""SAC's action for one observation through the sparse kernels in a handful of compiled calls.

Why: acting is batch-1, so its cost is per-call overhead, not multiply-adds. Through torch (the actor's
`MaskedMLP` on its network-level executor, then the head's chunk/tanh/exp/randn as torch ops) one action
took ~190 µs (deterministic) to ~260 µs (sampled) here, and a run acts three times per update with the
paper's evaluation (one training step, two evaluation steps: 10 episodes of 1000 steps every 5000):
~15% of a real DAPD run's profile. Here it is one `_spmv` per layer on numpy views of the live weights
and one head kernel.

It computes what `SAC.act` computes for one observation, to float rounding, and draws its noise with
``torch.randn(1, A)`` as `tanh_gaussian_sample` does, so the random stream (and hence a resumed run) is the
same either way. It declines (returns None, `SAC.act` then runs torch) wherever the actor's network-level
sparse executor would: not on the kernels, a mask too dense, ``unmasked()``, GPU or float64 weights.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ..algos.sac import LOG_STD_MAX, LOG_STD_MIN, Actor
from .sparse_exec import MLPSparseExecutor


@njit(cache=True, nogil=True)
def _spmv(indptr, indices, flat, w, bias, x, y, relu):  # pragma: no cover - compiled
    """`kernels._spmm` for one input vector: a gathered dot product per row (the batch loop of `_spmm`, one
    long here, cost more than the multiply-adds: 10.5 -> ~3 µs on a 256x256 layer at 5%)."""
    for o in range(y.shape[0]):
        acc = bias[o]
        for k in range(indptr[o], indptr[o + 1]):
            acc += w[flat[k]] * x[indices[k]]
        y[o] = acc * (acc > 0.0) if relu else acc


@njit(cache=True, nogil=True)
def _squash(head, eps, out, sample, lmin, lmax):  # pragma: no cover - compiled
    """tanh(μ) (``sample`` False) or tanh(μ + ε·σ) with log σ squashed into [lmin, lmax] as the actor's head."""
    act = out.shape[0]
    half = 0.5 * (lmax - lmin)
    for j in range(act):
        u = head[j]
        if sample:
            ls = lmin + half * (np.tanh(head[act + j]) + 1.0)
            u += eps[j] * np.exp(ls)
        out[j] = np.tanh(u)


class SparseActing:
    """``(obs, deterministic) -> action | None`` for `SAC.act_executor`."""

    def __init__(self, actor: Actor) -> None:
        self.mlp = actor.net
        layers = list(self.mlp)[0::2]
        self.act_dim = layers[-1].out_features // 2
        self.tensors = [t for m in layers for t in (m.weight, m.bias)]   # held: module attribute access costs ~1 µs
        self._views: tuple[tuple, list[np.ndarray]] = ((), [])
        self.acts = [np.empty(layer.out_features, np.float32) for layer in layers]
        self.calls = 0                                        # actions it computed (tests)

    def _params(self) -> list[np.ndarray] | None:
        """Flat numpy views of the layers' weights and biases (re-taken if a tensor was replaced)."""
        tensors = self.tensors
        key = tuple(t.data_ptr() for t in tensors)
        if key != self._views[0]:
            if any(t.device.type != "cpu" or t.dtype != torch.float32 or not t.is_contiguous() for t in tensors):
                return None
            self._views = (key, [t.detach().view(-1).numpy() for t in tensors])
        return self._views[1]

    def __call__(self, obs: np.ndarray, deterministic: bool) -> np.ndarray | None:
        executor = self.mlp.executor
        if not isinstance(executor, MLPSparseExecutor) or np.ndim(obs) != 1:
            return None
        plans = executor.current_plans()
        params = None if plans is None else self._params()
        if params is None:
            return None
        x = np.asarray(obs, dtype=np.float32)
        last = len(plans) - 1
        for i, plan in enumerate(plans):
            _spmv(plan.indptr, plan.indices, plan.flat_np, params[2 * i], params[2 * i + 1], x, self.acts[i], i < last)
            x = self.acts[i]
        out = np.empty(self.act_dim, np.float32)
        eps = out if deterministic else torch.randn(1, self.act_dim).numpy()[0]
        _squash(x, eps, out, not deterministic, LOG_STD_MIN, LOG_STD_MAX)
        self.calls += 1
        return out
