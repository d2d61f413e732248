"""Connection scores: how much each weight matters, as one tensor per masked layer.

Scores never read the training step's ``.grad``: they take their own gradients with
`torch.autograd.grad` on a separate pass, run only when a mask update is due. Higher = keep:
top-k of a score is the pathway it chooses (GraSP's sign is turned so that this holds).

- ``snip``: |θ ⊙ ∂L/∂θ| (Lee et al. 2019; the paper's choice);
- ``grad``: |∂L/∂(θ ⊙ m)| (RigL's grow signal);
- ``magnitude``: |θ|; ``random``: uniform;
- ``synflow``: data-free, iterative (Tanaka et al. 2020), on MLP pathways;
- ``grasp``: θ ⊙ Hg, the negative of Wang et al.'s score (they remove its highest values).

Every score reads the network's scored layers: its `MaskedLinear` / `MaskedConv2d` layers, or its
`TaskLinear` layers (a multi-task network in warm-up, one weight copy per task). The formulas are
elementwise, so on a ``[tasks, out, in]`` copy slice t is task t's score when the loss is the sum of the
tasks' losses (task t's loss reaches only copy t); SynFlow prunes each task's copies on their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from .masks import masked_layers
from .multitask import TaskLinear, task_layers
from .topk import task_topk_masks, topk_masks

LossClosure = Callable[[], torch.Tensor]
Scores = dict[str, torch.Tensor]


def scored_layers(net: nn.Module) -> dict:
    """The layers a score covers: the task layers of a multi-task network, else the masked layers."""
    return task_layers(net) or masked_layers(net)


def is_per_task(net: nn.Module) -> bool:
    """Whether ``net``'s scores are per task (``[tasks, out, in]``, top-k taken per task)."""
    return any(isinstance(m, TaskLinear) for m in scored_layers(net).values())


@contextlib.contextmanager
def _dense(layers: dict) -> Iterator[None]:
    """Run the layers on every stored weight (masked or not) while scoring."""
    for m in layers.values():
        m.force_dense += 1
    try:
        yield
    finally:
        for m in layers.values():
            m.force_dense -= 1


def _active_mask(m: nn.Module) -> torch.Tensor:
    """The float mask the layer's forward pass uses now (all task slices for a task layer)."""
    return m.mask_f if isinstance(m, TaskLinear) else m.mask_f[m.active_task]


def snip_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """Connection sensitivity |θ ⊙ ∂L/∂θ| (SNIP), on the dense network: every stored
    weight takes part, masked or not, so a pruned weight can earn its way back."""
    layers = scored_layers(net)
    weights = [m.weight for m in layers.values()]
    with _dense(layers):
        value = loss()
        grads = torch.autograd.grad(value, weights, allow_unused=True)
    return {name: (w.detach() * g).abs() if g is not None else torch.zeros_like(w)
            for (name, w), g in zip(((n, m.weight) for n, m in layers.items()), grads)}


def grad_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """|∂L/∂(θ ⊙ m)|: the dense gradient at the weights the pathway actually uses (RigL's
    grow signal), non-zero at inactive entries too. Computed by running the network densely
    on θ ⊙ m (inactive weights zeroed for the pass, then restored)."""
    layers = scored_layers(net)
    saved = [m.weight.detach().clone() for m in layers.values()]
    try:
        with torch.no_grad():        # not effective_weight(): it is dense while scoring
            for m in layers.values():
                if m.use_mask:
                    m.weight.mul_(_active_mask(m))
        with _dense(layers):
            value = loss()
            grads = torch.autograd.grad(value, [m.weight for m in layers.values()], allow_unused=True)
    finally:
        with torch.no_grad():
            for m, w in zip(layers.values(), saved):
                m.weight.copy_(w)
    return {name: g.abs() if g is not None else torch.zeros_like(m.weight)
            for (name, m), g in zip(layers.items(), grads)}


def magnitude_scores(net: nn.Module) -> Scores:
    return {name: m.weight.detach().abs() for name, m in scored_layers(net).items()}


def random_scores(net: nn.Module, generator: torch.Generator | None = None) -> Scores:
    """Uniform random scores: top-k of them is a uniformly random mask of exactly k weights."""
    return {name: torch.rand(m.weight.shape, generator=generator).to(m.weight.device)
            for name, m in scored_layers(net).items()}


def mlp_chains(net: nn.Module) -> list[list[nn.Module]]:
    """The masked linear layers of ``net`` as chains (one per MLP: an actor, each critic of a twin):
    a new chain starts wherever a layer's input width is not the previous layer's output width."""
    chains: list[list[nn.Module]] = []
    for m in scored_layers(net).values():
        if not hasattr(m, "in_features"):
            raise ValueError("synflow scores MLP pathways (linear layers); this network has convolutions")
        if chains and chains[-1][-1].out_features == m.in_features:
            chains[-1].append(m)
        else:
            chains.append([m])
    return chains


def _synflow_once(net: nn.Module, masks: dict[str, torch.Tensor]) -> Scores:
    """|θ ⊙ ∂R/∂θ| with R = 1ᵀ|W_L ⊙ m_L| ··· |W_1 ⊙ m_1| 1 summed over the chains, in float64 (a product of
    3+ layers of |θ| overflows float32 on wide networks). With positive inputs and |θ| every ReLU passes, so
    R is the paper's path sum 1ᵀ(∏ |θ^l|)1. Biases are left out, as in that formula (the authors' code runs
    the whole network on |θ| and |b|, which adds bias-started paths to the scores of later layers: the
    same where biases are zero). Task layers run every task's
    copies at once (``[1, in] @ [tasks, in, out]`` broadcasts), R summing over the tasks."""
    layers = scored_layers(net)
    names = {id(m): n for n, m in layers.items()}
    weights = {n: (m.weight.detach().double().abs() * masks[n].double()).requires_grad_(True)
               for n, m in layers.items()}
    total = 0.0
    for chain in mlp_chains(net):
        x = torch.ones(1, chain[0].in_features, dtype=torch.float64, device=chain[0].weight.device)
        for m in chain:
            x = x @ weights[names[id(m)]].transpose(-1, -2)
        total = total + x.sum()
    grads = torch.autograd.grad(total, list(weights.values()))
    return {n: (w.detach() * g) for (n, w), g in zip(weights.items(), grads)}


def synflow_scores(net: nn.Module, keep_ratio: float, rounds: int = 100) -> Scores:
    """SynFlow's iterative pruning, data-free: over ``rounds`` rounds keep the top keep_ratio^(r/rounds)
    of the scores of the current mask (the exponential schedule of the paper), starting dense. Returns the
    last round's scores, zero outside the final mask, so that top-k of them is SynFlow's mask."""
    if rounds < 1:
        raise ValueError(f"synflow needs at least 1 round, got {rounds}")
    layers = scored_layers(net)
    keep = task_topk_masks if is_per_task(net) else topk_masks
    masks = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in layers.items()}
    for r in range(1, rounds + 1):
        scores = _synflow_once(net, masks)
        masks = keep(scores, keep_ratio ** (r / rounds))
    scores = _synflow_once(net, masks)
    # Survivors with no path left score 0 like pruned ones: lift them by a tiny positive amount so that
    # top-k keeps exactly the final mask.
    tiny = torch.finfo(torch.float64).tiny
    return {n: torch.where(masks[n], scores[n] + tiny, torch.zeros_like(scores[n])).float() for n in scores}


def grasp_scores(net: nn.Module, loss: LossClosure) -> Scores:
    """θ ⊙ (H g) on the dense network (g = ∂L/∂θ, H the Hessian of L, Hg by a second backward pass of
    gᵀ·stop(g)). Wang et al. score −θ ⊙ Hg and *remove* its highest values; keeping the top of θ ⊙ Hg is
    the same rule in this module's convention (higher = keep)."""
    layers = scored_layers(net)
    weights = [m.weight for m in layers.values()]
    with _dense(layers):
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


SCORES = ("snip", "grad", "grasp", "synflow", "magnitude", "random")
DATA_SCORES = ("snip", "grad", "grasp")
"""the scores that need a loss on data (the others are data-free)"""


def network_scores(score: str, net: nn.Module, loss: LossClosure | None, *, keep_ratio: float,
                   synflow_rounds: int = 100, generator: torch.Generator | None = None) -> Scores:
    """Score ``net`` by the named score: the one entry point every pathway method uses. ``keep_ratio``
    is SynFlow's final keep (its rounds prune towards it); the data scores need ``loss``."""
    if score == "magnitude":
        return magnitude_scores(net)
    if score == "random":
        return random_scores(net, generator)
    if score == "synflow":
        return synflow_scores(net, keep_ratio, synflow_rounds)
    if score not in DATA_SCORES:
        raise ValueError(f"unknown score {score!r}; allowed: {', '.join(SCORES)}")
    if loss is None:
        raise ValueError(f"{score} scoring needs a loss closure")
    return {"snip": snip_scores, "grad": grad_scores, "grasp": grasp_scores}[score](net, loss)
