"""Finding and reading the masks of a module: which layers carry a pathway, how dense it is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from .layers import MASKED_LAYERS, MaskedLinear


def masked_layers(net: nn.Module) -> dict[str, MaskedLinear]:
    """All masked layers (`MaskedLinear`, `MaskedConv2d`) of ``net`` by qualified name, in module order."""
    return {name: m for name, m in net.named_modules() if isinstance(m, MASKED_LAYERS)}


def layer_members(net: nn.Module) -> dict[str, str]:
    """Masked layer name -> the member of ``net`` it belongs to, for top-k per member.

    A network made of separate sub-networks names them in a ``pathway_members`` attribute (the twin
    critic: ``("q1", "q2")``; BCQ's VAE: ``("encoder", "decoder")``); layers outside every named
    member, and every layer of a network without members, belong to the member ``""``."""
    names = tuple(getattr(net, "pathway_members", ()))
    return {layer: next((m for m in names if layer.startswith(m + ".")), "") for layer in masked_layers(net)}


def reachable_inputs(chain: list[torch.Tensor]) -> torch.Tensor:
    """Which inputs of a stack of masked linear layers keep at least one path of kept weights to an output.

    ``chain``: the layers' ``(out, in)`` masks, input layer first. Why it matters: a top-k over a whole
    network can keep enough weights in every layer and still cut an input off — a Q network blind to an
    action dimension gives the actor no gradient for that action — and layer densities do not show it."""
    reach = chain[-1].bool().any(0)
    for mask in reversed(chain[:-1]):
        reach = mask.bool()[reach].any(0)
    return reach


def member_reach(layers: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor] | None:
    """`reachable_inputs` per member network: ``layers`` are ``(qualified name, (out, in) mask)`` in module
    order, a member is the layers' parent module (SAC's ``actor.net``, the twin critic's ``q1`` and ``q2``).
    None where the layers are not one chain of linear layers per member (convolutions, heads that branch):
    their inputs are not one vector."""
    members: dict[str, list[torch.Tensor]] = {}
    for name, mask in layers:
        members.setdefault(name.rpartition(".")[0], []).append(mask)
    for chain in members.values():
        if any(m.dim() != 2 for m in chain) or any(a.shape[0] != b.shape[1] for a, b in zip(chain, chain[1:])):
            return None
    return {member: reachable_inputs(chain) for member, chain in members.items()}


def cut_off_inputs(net: nn.Module, task: int = 0) -> dict[str, list[int]]:
    """The inputs ``task``'s pathway leaves without a path to the output, per member of ``net`` that has any
    (empty when none, or when ``net`` is not made of chains of linear layers)."""
    layers = [(name, m.mask[task] if m.use_mask else torch.ones_like(m.weight))
              for name, m in masked_layers(net).items()]
    reach = member_reach(layers) or {}
    return {member: cut for member, r in reach.items() if (cut := (~r).nonzero().flatten().tolist())}


def ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0–2, 5, 7–8"`` (sorted indices, for messages)."""
    parts, start = [], None
    for i, x in enumerate(indices):
        start = x if start is None else start
        if i + 1 == len(indices) or indices[i + 1] != x + 1:
            parts.append(str(x) if start == x else f"{start}–{x}")
            start = None
    return ", ".join(parts)


def weight_count(net: nn.Module) -> int:
    """Number of maskable weights (biases excluded)."""
    return sum(m.weight.numel() for m in masked_layers(net).values())


def active_count(net: nn.Module, task: int = 0) -> int:
    """Weights in ``task``'s pathway; all weights for layers that are not masked."""
    return sum(int(m.mask[task].sum()) if m.use_mask else m.weight.numel()
               for m in masked_layers(net).values())


def density(net: nn.Module, task: int = 0) -> float:
    """Fraction of maskable weights that are active (1.0 for a dense network)."""
    total = weight_count(net)
    return active_count(net, task) / total if total else 1.0


def layer_density(net: nn.Module, task: int = 0) -> dict[str, float]:
    return {name: (float(m.mask[task].float().mean()) if m.use_mask else 1.0)
            for name, m in masked_layers(net).items()}


def get_masks(net: nn.Module, task: int = 0) -> dict[str, torch.Tensor]:
    return {name: m.mask[task].clone() for name, m in masked_layers(net).items()}


def set_masks(net: nn.Module, masks: dict[str, torch.Tensor], task: int = 0) -> dict[str, int]:
    """Install masks by layer name; returns the number of changed entries per layer."""
    layers = masked_layers(net)
    missing = set(layers) - set(masks)
    if missing:
        raise KeyError(f"no mask given for layers {sorted(missing)}")
    return {name: layers[name].set_mask(masks[name], task) for name in layers}


def copy_masks(src: nn.Module, dst: nn.Module) -> None:
    """Copy every mask (all tasks) and the masking flag from ``src`` to a same-shaped ``dst``
    (the target critic): masks are buffers, so parameter-only Polyak updates miss them."""
    for (name, a), (_, b) in zip(masked_layers(src).items(), masked_layers(dst).items(), strict=True):
        if a.mask.shape != b.mask.shape:
            raise ValueError(f"layer {name}: mask shapes differ {tuple(a.mask.shape)} vs {tuple(b.mask.shape)}")
        b.mask.copy_(a.mask)
        b.refresh()
        b.use_mask = a.use_mask


@contextlib.contextmanager
def unmasked(*nets: nn.Module) -> Iterator[None]:
    """Run ``nets`` densely (every stored weight, masked or not), e.g. to score connections
    with SNIP. Nests safely; masks installed meanwhile take effect on exit."""
    layers = [m for net in nets for m in masked_layers(net).values()]
    for m in layers:
        m.force_dense += 1
    try:
        yield
    finally:
        for m in layers:
            m.force_dense -= 1


@torch.no_grad()
def zero_masked_weights(net: nn.Module, task: int = 0) -> None:
    """Set the stored value of every inactive weight to zero (the 'zero' prune mode)."""
    for m in masked_layers(net).values():
        if m.use_mask:
            m.weight.masked_fill_(~m.mask[task], 0.0)
