"""Finding and reading the masks of a module: which layers carry a pathway, how dense it is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
