"""Switch a network's masked layers to sparse execution (`kernels.py`) and back.

A `MaskedLinear` asks its ``executor`` to compute masked 2-D calls; the executor here caches the
sparsity structure of the layer's current mask and rebuilds it when the mask changes (the layer
bumps ``mask_version``), so the same switch serves a frozen pathway (built once) and methods
whose mask moves (DAPD's warm-up, SET/RigL/RLx2: rebuilt at each change, ~0.1 ms per layer).
A multi-task `TaskLinear` gets a `TaskSparseExecutor`: one kernel call per task on its own mask
(offline MT10 NPF: frozen per-task pathways over one shared weight). Dense calls (``unmasked()``
scoring, dense networks, GPU tensors, a `MaskedLinear`'s 3-D multi-task batches) keep the dense path.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pathways import MaskedLinear, TaskLinear
from ..pathways.layers import MaskedMLP
from ..pathways.masks import masked_layers
from ..pathways.multitask import task_layers
from .kernels import SparsePlan, sparse_linear, sparse_mlp, supported

# Below this fraction of active weights a layer runs sparse; above it the dense matmul is
# faster on this CPU (benchmarks/sparse_update.py measures both sides; see docs/decisions.md).
MAX_DENSITY = 0.3


def network_density(masks: list[torch.Tensor]) -> float:
    """Active share of a network's weights. A network runs sparse on this, not on each layer's: global
    top-k leaves the small output layers of SAC's networks 27-79% dense (a 256x1 Q head), which declined
    the whole network before, although those layers hold ~0.5% of its weights."""
    return sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def is_relu_chain(mlp: nn.Module) -> bool:
    """Whether ``mlp``'s children are masked linear layers with biases and a ReLU between each two: the shape
    the network-level kernels compute (`MLPSparseExecutor`, `fused_sac`)."""
    children = list(mlp)
    return len(children) % 2 == 1 and all(isinstance(a, nn.ReLU) for a in children[1::2]) and \
        all(isinstance(m, MaskedLinear) and m.bias is not None for m in children[0::2])


class SparseExecutor:
    """Per-layer cache of the mask's CSR/CSC structure; returns None to decline a call."""

    def __init__(self, max_density: float = MAX_DENSITY) -> None:
        self.max_density = max_density
        self.plan: SparsePlan | None = None
        self.key: tuple[int, int] | None = None
        self.dense = False              # the current mask is too dense to win

    def __call__(self, layer: MaskedLinear, x: torch.Tensor) -> torch.Tensor | None:
        if not supported(x, layer.weight):
            return None
        key = (layer.mask_version, layer.active_task)
        if key != self.key:
            mask = layer.mask[layer.active_task]
            self.dense = float(mask.float().mean()) > self.max_density
            self.plan = None if self.dense else SparsePlan.from_mask(mask)
            self.key = key
        if self.dense:
            return None
        return sparse_linear(x, layer.weight, layer.bias, self.plan)


class TaskSparseExecutor:
    """A multi-task layer's pathways on the sparse kernels: task t's rows ``x[t]`` through the CSR plan of
    its own mask m_t over its weight slice W_t (one kernel call per task). Each slice gets the masked
    layer's gradient g_t ⊙ m_t, so `average_task_grads` and the optimizer see what the dense bmm gives."""

    def __init__(self, max_density: float = MAX_DENSITY) -> None:
        self.max_density = max_density
        self.plans: list[SparsePlan] | None = None
        self.key: int | None = None

    def __call__(self, layer: TaskLinear, x: torch.Tensor) -> torch.Tensor | None:
        if x.dim() != 3 or not supported(x[0], layer.weight):
            return None
        if layer.mask_version != self.key:
            dense = float(layer.mask.float().mean()) > self.max_density
            self.plans = None if dense else [SparsePlan.from_mask(m) for m in layer.mask]
            self.key = layer.mask_version
        if self.plans is None:
            return None
        return torch.stack([sparse_linear(x[t], layer.weight[t], layer.bias[t], plan)
                            for t, plan in enumerate(self.plans)])


class MLPSparseExecutor:
    """A whole `MaskedMLP` (masked linear layers with ReLU between them) in one autograd node of the kernels
    (`kernels.sparse_mlp`); declines (the layers then run one by one, each on its own executor) where any
    layer is unmasked, inside `unmasked()`, on another task's pathway, too dense, or for inputs the
    kernels do not take."""

    def __init__(self, mlp: MaskedMLP, max_density: float = MAX_DENSITY) -> None:
        self.layers = list(mlp)[0::2]
        self.fusable = is_relu_chain(mlp)
        self.max_density = max_density
        self.key: tuple | None = None
        self.plans: list[SparsePlan] | None = None

    def current_plans(self) -> list[SparsePlan] | None:
        """The plans of the layers' masks now, or None where the network must run dense (not a ReLU chain,
        a layer unmasked or forced dense, a multi-task layer, too dense)."""
        layers = self.layers
        if not self.fusable or any(not m.use_mask or m.force_dense for m in layers):
            return None
        key = tuple(m.mask_version for m in layers)
        if key != self.key:          # the task count is part of the mask: checked when it changes (~2 µs a layer)
            masks = [m.mask[0] for m in layers]
            dense = any(m.tasks != 1 for m in layers) or network_density(masks) > self.max_density
            self.plans = None if dense else [SparsePlan.from_mask(mask) for mask in masks]
            self.key = key
        return self.plans

    def __call__(self, mlp: MaskedMLP, x: torch.Tensor) -> torch.Tensor | None:
        if not self.fusable or x.dim() != 2 or not supported(x, self.layers[0].weight):
            return None
        plans = self.current_plans()
        if plans is None:
            return None
        return sparse_mlp(x, plans, [p for m in self.layers for p in (m.weight, m.bias)])


def enable_sparse_execution(*nets: nn.Module, max_density: float = MAX_DENSITY, fuse: bool = True) -> int:
    """Give every masked layer (and multi-task layer) of ``nets`` a sparse executor, and every `MaskedMLP`
    a network-level one (``fuse``); returns how many layers."""
    count = 0
    for net in nets:
        for module in net.modules():
            if isinstance(module, MaskedMLP) and fuse:
                module.executor = MLPSparseExecutor(module, max_density)
        for layer in masked_layers(net).values():
            layer.executor = SparseExecutor(max_density)
            count += 1
        for layer in task_layers(net).values():
            layer.executor = TaskSparseExecutor(max_density)
            count += 1
    return count


def disable_sparse_execution(*nets: nn.Module) -> None:
    for net in nets:
        for layer in [*masked_layers(net).values(), *task_layers(net).values()]:
            layer.executor = None
        for module in net.modules():
            if isinstance(module, MaskedMLP):
                module.executor = None


def resolve_sparse(mode: str, device: torch.device, keeps: list[float], dense_method: bool) -> bool:
    """``auto``: on where it was measured to win: the CPU, and pathways of at most MAX_DENSITY."""
    if mode == "off" or dense_method:
        return False
    if mode == "on":
        return device.type == "cpu"
    return device.type == "cpu" and max(keeps) <= MAX_DENSITY
