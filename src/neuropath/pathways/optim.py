"""Optimizer-state repair when a mask changes.

A weight that leaves or joins the pathway must not carry Adam moments from its old life:
a leftover first moment would keep moving a masked weight (IntelLabs/distiller#63) and a
stale second moment would mis-scale a regrown one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

_STATE_KEYS = {
    "Adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "SGD": ("momentum_buffer",),
}


@torch.no_grad()
def reset_optimizer_state(optimizer: torch.optim.Optimizer, param: torch.Tensor,
                          where: torch.Tensor) -> None:
    """Zero ``param``'s per-element optimizer state at the boolean positions ``where``."""
    kind = type(optimizer).__name__
    if kind not in _STATE_KEYS:
        raise TypeError(f"cannot repair the state of optimizer {kind}; supported: {sorted(_STATE_KEYS)}")
    state = optimizer.state.get(param)
    if not state:
        return
    for key in _STATE_KEYS[kind]:
        buf = state.get(key)
        if isinstance(buf, torch.Tensor) and buf.shape == param.shape:
            buf.masked_fill_(where, 0.0)


def restart_where_zero(optimizer: torch.optim.Optimizer, param: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """The entries of ``where`` whose Adam moments are exactly zero: the ones that start afresh when they
    join the pathway (every changed entry after `reset_optimizer_state`; first-time entries when the
    moments are kept)."""
    state = optimizer.state.get(param)
    if not state or "exp_avg_sq" not in state:
        return torch.zeros_like(where)
    return where & (state["exp_avg_sq"] == 0) & (state["exp_avg"] == 0)


@njit(cache=True, nogil=True)
def _own_age_fix(param, m, v, idx, born, t, lr, eps, glob1, glob2_root, own1, own2_root):  # pragma: no cover
    """param[i] += lr·m/(glob1·(√v/glob2_root + ε)) − lr·m/(own1[k]·(√v/own2_root[k] + ε)), k = t − born[i]."""
    last = own1.size - 1
    for j in range(idx.size):
        i = idx[j]
        k = min(int(t - born[i]), last)
        root = math.sqrt(v[i])
        param[i] += lr * m[i] * (1.0 / (glob1 * (root / glob2_root + eps)) - 1.0 / (own1[k] * (root / own2_root[k] + eps)))


class OwnAgeBiasCorrection:
    """Adam's bias correction per entry, from the entry's own age since its moments started at zero.

    Why: torch's Adam (and both DAPD codes) corrects every entry of a tensor by the tensor's step
    count t. An entry that joins a pathway at step t0 with zero moments then takes steps of
    lr·(1−β1^k)/√(1−β2^k) for its k-th step — 3.2×lr at once, 6×lr at k = 20, 3×lr at k = 100 —
    instead of the ~lr a fresh Adam gives it. This hook runs after each optimizer step and moves those
    entries to where Adam with corrections 1−β^k would have put them: it adds
    lr·m/(1−β1^t)/(√v/√(1−β2^t)+ε) − lr·m/(1−β1^k)/(√v/√(1−β2^k)+ε) at the young entries only
    (a few thousand of a network's weights), so the dense fused step stays as it is. Entries older
    than `retire_age` (where the two corrections agree to 0.05%) leave the young set. On the CPU one
    compiled call per tensor does it (a table holds the corrections by age); elsewhere torch ops.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        if type(optimizer) is not torch.optim.Adam:
            raise TypeError(f"own-age bias correction is for Adam, got {type(optimizer).__name__}")
        group = optimizer.param_groups[0]
        if group.get("amsgrad") or group.get("weight_decay") or group.get("maximize") or \
                len(optimizer.param_groups) != 1:
            raise ValueError("own-age bias correction supports one parameter group of plain Adam "
                             "(no amsgrad, weight decay or maximize)")
        self.optimizer, self.params = optimizer, list(params)
        beta1, beta2 = (float(b) for b in group["betas"])
        # the age at which √(1−β2^k) is within 0.05% of 1 (β2 0.999: 6,905 steps)
        self.retire_age = int(math.log(1e-3) / math.log(beta2)) + 1
        ages = np.arange(self.retire_age + 512, dtype=np.float64)      # ages past retirement: the last row
        with np.errstate(divide="ignore"):
            self._own1, self._own2_root = 1 - beta1 ** ages, np.sqrt(1 - beta2 ** ages)
        self.born: dict[int, torch.Tensor] = {}    # param index → its entries' birth step (−1: not young)
        self._young: dict[int, torch.Tensor] = {}  # param index → flat indices of its young entries
        self._steps = 0
        self.handle = optimizer.register_step_post_hook(lambda opt, args, kwargs: self.correct())

    def _step_of(self, param: torch.Tensor) -> torch.Tensor | None:
        state = self.optimizer.state.get(param)
        return None if not state else state["step"]

    @torch.no_grad()
    def restart(self, param: torch.Tensor, where: torch.Tensor) -> None:
        """The entries of ``where`` start their moments now: their age counts from the current step."""
        step = self._step_of(param)
        if step is None:                   # no step taken yet: every entry's age is the tensor's
            return
        i = next(n for n, p in enumerate(self.params) if p is param)
        born = self.born.setdefault(i, torch.full_like(param, -1.0))
        born.masked_fill_(where, 0.0)
        born.add_(where.to(born.dtype) * step.to(born.device, born.dtype))
        self._young[i] = (born.view(-1) >= 0).nonzero().view(-1)

    @torch.no_grad()
    def correct(self) -> None:
        group = self.optimizer.param_groups[0]
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        self._steps += 1
        for i, idx in self._young.items():
            if idx.numel() == 0:
                continue
            param = self.params[i]
            state = self.optimizer.state[param]
            if param.device.type == "cpu":
                t = float(state["step"])
                _own_age_fix(param.data.view(-1).numpy(), state["exp_avg"].view(-1).numpy(),
                             state["exp_avg_sq"].view(-1).numpy(), idx.numpy(), self.born[i].view(-1).numpy(),
                             t, lr, eps, 1 - beta1 ** t, math.sqrt(1 - beta2 ** t), self._own1, self._own2_root)
            else:
                self._correct_torch(param, state, idx, self.born[i], lr, eps, beta1, beta2)
        if self._steps % 256 == 0:
            self._retire()

    def _correct_torch(self, param, state, idx, born, lr, eps, beta1, beta2) -> None:
        t = state["step"].to(param.device, param.dtype)
        m, v = state["exp_avg"].view(-1)[idx], state["exp_avg_sq"].view(-1)[idx]
        age = t - born.view(-1)[idx]
        own1, own2 = 1 - torch.pow(beta1, age), 1 - torch.pow(beta2, age)
        glob1, glob2 = 1 - torch.pow(beta1, t), 1 - torch.pow(beta2, t)
        root = v.sqrt()
        fix = lr * m * (1 / (glob1 * (root / glob2.sqrt() + eps)) - 1 / (own1 * (root / own2.sqrt() + eps)))
        param.data.view(-1).index_add_(0, idx, fix)

    def _retire(self) -> None:
        for i, idx in list(self._young.items()):
            state = self.optimizer.state.get(self.params[i])
            if state is None or idx.numel() == 0:
                continue
            old = (state["step"].to(idx.device) - self.born[i].view(-1)[idx]) >= self.retire_age
            if bool(old.any()):
                self.born[i].view(-1)[idx[old]] = -1.0
                self._young[i] = idx[~old]

    def young(self) -> int:
        """How many entries are corrected now (logged with each mask update)."""
        return sum(int(idx.numel()) for idx in self._young.values())

    def state_dict(self) -> dict:
        return {"born": {i: b.clone() for i, b in self.born.items()}, "steps": self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.born = {int(i): b.to(self.params[int(i)].device) for i, b in state["born"].items()}
        self._young = {i: (b.view(-1) >= 0).nonzero().view(-1) for i, b in self.born.items()}
        self._steps = int(state["steps"])
