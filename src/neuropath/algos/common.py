"""Pieces every algorithm shares: batches, MLPs of masked layers, Polyak averaging, the optimizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from ..pathways import MaskedLinear
from ..pathways.layers import MaskedMLP


def adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel where it has one (CPU, CUDA). Besides being faster, the fused
    kernel keeps its speed when most second moments are zero, as they are for the weights outside a
    pathway: the plain CPU implementation's ``sqrt`` of zeros is ~6× slower than of normal numbers
    here, so a 95%-masked layer's Adam step cost 2–2.4× a dense one's (fused: 1.0×;
    benchmarks/adam_step.py)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None, **kwargs)


def module_device(module: nn.Module) -> torch.device:
    """Where a module's parameters live: observations from numpy go there before a forward pass."""
    return next(module.parameters()).device


class Batch(NamedTuple):
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor        # [B, 1]
    next_obs: torch.Tensor
    not_done: torch.Tensor      # [B, 1]; 0 only on true termination, never on time-limit truncation
    # n-step batches only (RLx2): the bootstrap's discount γ^m replacing γ, [B, 1]; the
    # intermediate states s_{t+1..t+n-1} [B, n-1, obs] and their weights γ^k (0 past an
    # episode's end) [B, n-1], for the soft target's entropy bonuses.
    discount: torch.Tensor | None = None
    mid_obs: torch.Tensor | None = None
    mid_weight: torch.Tensor | None = None


def random_batch(n: int, obs_dim: int, act_dim: int, generator: torch.Generator, shape: tuple[int, ...] = ()) -> Batch:
    """A batch of random transitions (actions in [-1, 1], nothing terminal) for counting FLOPs and timing
    updates, where the values do not matter but the shapes do; ``shape`` prefixes a task axis."""
    g = generator
    return Batch(torch.randn(*shape, n, obs_dim, generator=g), torch.rand(*shape, n, act_dim, generator=g) * 2 - 1,
                 torch.randn(*shape, n, 1, generator=g), torch.randn(*shape, n, obs_dim, generator=g),
                 torch.ones(*shape, n, 1))


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, *, init: str = "xavier_normal",
        activation: type[nn.Module] = nn.ReLU, out_gain: float = 1.0) -> MaskedMLP:
    """MLP of `MaskedLinear` layers. ``init="xavier_normal"``: the authors' SAC; ``"orthogonal"``: the
    PPO implementations' (CleanRL, SB3): orthogonal weights with gain √2 in hidden layers and
    ``out_gain`` in the output layer, zero biases."""
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layer = MaskedLinear(a, b)
        last = i == len(dims) - 2
        if init == "xavier_normal":
            nn.init.xavier_normal_(layer.weight)
        elif init == "orthogonal":
            nn.init.orthogonal_(layer.weight, out_gain if last else 2 ** 0.5)
            nn.init.zeros_(layer.bias)
        layers.append(layer)
        if not last:
            layers.append(activation())
    return MaskedMLP(*layers)


MLPFactory = Callable[[int, Sequence[int], int], nn.Module]


def mlp_factory(tasks: int = 0, per_task_heads: bool = False) -> MLPFactory:
    """How an algorithm builds its MLPs: `mlp` for one task; for ``tasks`` > 0, MLPs of `TaskLinear`
    layers over ``[tasks, batch, features]`` (one pathway per task, see pathways/multitask.py), the
    output layer one head per task if ``per_task_heads``. Losses written over the last dimensions
    then serve both."""
    if tasks <= 0:
        return mlp
    from ..pathways.multitask import task_mlp
    return partial(task_mlp, tasks=tasks, per_task_head=per_task_heads)


@torch.no_grad()
def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target ← (1-τ)·target + τ·source, over parameters only (masks are copied on change)."""
    t = list(target.parameters())
    torch._foreach_lerp_(t, list(source.parameters()), tau)
