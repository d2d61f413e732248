"""Connection scores: how much each weight matters, as one tensor per masked layer.

Scores never read the training step's ``.grad``: they take their own gradients with
`torch.autograd.grad` on a separate pass, run only when a mask update is due. Higher = keep:
top-k of a score is the pathway it chooses (GraSP's sign is turned so that this holds).

- ``snip``: |θ ⊙ ∂L/∂θ| (Lee et al. 2019; the paper's choice);
- ``grad``: |∂L/∂(θ ⊙ m)| (RigL's grow signal);
- ``magnitude``: |θ|; ``random``: uniform;
- ``synflow``: data-free, iterative (Tanaka et al. 2020), on MLP pathways;
- ``grasp``: θ ⊙ Hg, the negative of Wang et al.'s score (they remove its highest values).
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


def mlp_chains(net: nn.Module) -> list[list[nn.Module]]:
    """The masked linear layers of ``net`` as chains (one per MLP: an actor, each critic of a twin):
    a new chain starts wherever a layer's input width is not the previous layer's output width."""
    chains: list[list[nn.Module]] = []
    for m in masked_layers(net).values():
        if not hasattr(m, "in_features"):
            raise ValueError("synflow scores MLP pathways (linear layers); this network has convolutions")
        if chains and chains[-1][-1].out_features == m.in_features:
            chains[-1].append(m)
        else:
            chains.append([m])
    return chains


def _synflow_once(net: nn.Module, masks: dict[str, torch.Tensor]) -> Scores:
    """|θ ⊙ ∂R/∂θ| with R = 1ᵀ|W_L ⊙ m_L| ··· |W_1 ⊙ m_1| 1 summed over the chains, in float64 (a product of
    3+ layers of |θ| overflows float32 on wide networks). Biases are left out: SynFlow's R with positive
    inputs and |θ| passes every ReLU, and a bias adds no path through a weight."""
    layers = masked_layers(net)
    names = {id(m): n for n, m in layers.items()}
    weights = {n: (m.weight.detach().double().abs() * masks[n].double()).requires_grad_(True)
               for n, m in layers.items()}
    total = 0.0
    for chain in mlp_chains(net):
        x = torch.ones(1, chain[0].in_features, dtype=torch.float64, device=chain[0].weight.device)
        for m in chain:
            x = x @ weights[names[id(m)]].t()
        total = total + x.sum()
    grads = torch.autograd.grad(total, list(weights.values()))
    return {n: (w.detach() * g) for (n, w), g in zip(weights.items(), grads)}


def synflow_scores(net: nn.Module, keep_ratio: float, rounds: int = 100) -> Scores:
    """SynFlow's iterative pruning, data-free: over ``rounds`` rounds keep the top keep_ratio^(r/rounds)
    of the scores of the current mask (the exponential schedule of the paper), starting dense. Returns the
    last round's scores, zero outside the final mask, so that top-k of them is SynFlow's mask."""
    from .topk import topk_masks
    if rounds < 1:
        raise ValueError(f"synflow needs at least 1 round, got {rounds}")
    layers = masked_layers(net)
    masks = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in layers.items()}
    for r in range(1, rounds + 1):
        scores = _synflow_once(net, masks)
        masks = topk_masks(scores, keep_ratio ** (r / rounds))
    scores = _synflow_once(net, masks)
    # Survivors with no path left score 0 like pruned ones: lift them by a tiny positive amount so that
    # top-k keeps exactly the final mask.
    tiny = torch.finfo(torch.float64).tiny
    return {n: torch.where(masks[n], scores[n] + tiny, torch.zeros_like(scores[n])).float() for n in scores}


def grasp_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """θ ⊙ (H g) on the dense network (g = ∂L/∂θ, H the Hessian of L, Hg by a second backward pass of
    gᵀ·stop(g)). Wang et al. score −θ ⊙ Hg and *remove* its highest values; keeping the top of θ ⊙ Hg is
    the same rule in this module's convention (higher = keep)."""
    layers = masked_layers(net)
    weights = [m.weight for m in layers.values()]
    with unmasked(net):
        value = loss()
        grads = torch.autograd.grad(value, weights, create_graph=True, allow_unused=True)
        used = [(w, g) for w, g in zip(weights, grads) if g is not None]
        if not used:
            return {n: torch.zeros_like(m.weight) for n, m in layers.items()}
        z = sum((g * g.detach()).sum() for _, g in used)
        hg = torch.autograd.grad(z, [w for w, _ in used], allow_unused=True)
    by_id = {id(w): h for (w, _), h in zip(used, hg)}
    return {n: (m.weight.detach() * by_id[id(m.weight)]) if by_id.get(id(m.weight)) is not None
            else torch.zeros_like(m.weight) for n, m in layers.items()}
