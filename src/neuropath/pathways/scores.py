"""Connection scores: how much each weight matters, as one tensor per masked layer.

Scores never read the training step's ``.grad``: they take their own gradients with
`torch.autograd.grad` on a separate pass, run only when a mask update is due.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .masks import masked_layers, unmasked

LossClosure = Callable[[], torch.Tensor]
Scores = dict[str, torch.Tensor]


def snip_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """Connection sensitivity |θ ⊙ ∂L/∂θ| (SNIP), on the dense network: every stored
    weight takes part, masked or not, so a pruned weight can earn its way back."""
    layers = masked_layers(net)
    weights = [m.weight for m in layers.values()]
    with unmasked(net):
        value = loss()
        grads = torch.autograd.grad(value, weights, allow_unused=True)
    return {name: (w.detach() * g).abs() if g is not None else torch.zeros_like(w)
            for (name, w), g in zip(((n, m.weight) for n, m in layers.items()), grads)}


def grad_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """|∂L/∂(θ ⊙ m)|: the dense gradient at the weights the pathway actually uses (RigL's
    grow signal), non-zero at inactive entries too. Computed by running the network densely
    on θ ⊙ m (inactive weights zeroed for the pass, then restored)."""
    layers = masked_layers(net)
    saved = [m.weight.detach().clone() for m in layers.values()]
    try:
        with torch.no_grad():        # not effective_weight(): it is dense inside unmasked()
            for m in layers.values():
                if m.use_mask:
                    m.weight.mul_(m.mask_f[m.active_task])
        with unmasked(net):
            value = loss()
            grads = torch.autograd.grad(value, [m.weight for m in layers.values()], allow_unused=True)
    finally:
        with torch.no_grad():
            for m, w in zip(layers.values(), saved):
                m.weight.copy_(w)
    return {name: g.abs() if g is not None else torch.zeros_like(m.weight)
            for (name, m), g in zip(layers.items(), grads)}


def magnitude_scores(net: nn.Module) -> Scores:
    return {name: m.weight.detach().abs() for name, m in masked_layers(net).items()}


def random_scores(net: nn.Module, generator: torch.Generator | None = None) -> Scores:
    """Uniform random scores: top-k of them is a uniformly random mask of exactly k weights."""
    return {name: torch.rand(m.weight.shape, generator=generator).to(m.weight.device)
            for name, m in masked_layers(net).items()}
