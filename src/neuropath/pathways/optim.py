"""Optimizer-state repair when a mask changes.

A weight that leaves or joins the pathway must not carry Adam moments from its old life:
a leftover first moment would keep moving a masked weight (IntelLabs/distiller#63) and a
stale second moment would mis-scale a regrown one.
"""

from __future__ import annotations

import torch

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
