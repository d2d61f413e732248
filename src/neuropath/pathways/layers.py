"""`MaskedLinear`: a linear layer whose weights are gated by a boolean pathway mask.

Why a plain subclass and no hooks: `torch.nn.utils.prune` breaks deepcopy and
`parametrize` renames state-dict keys; a subclass keeps the keys `weight`, `bias`,
`mask`, deep-copies and saves like any module, and costs one elementwise multiply.

The forward pass multiplies by a float copy of the mask, ``W * m``: masked entries get an
exactly-zero gradient (for any finite upstream gradient) and keep their stored values, so a
weight that a later mask re-selects resumes where it stopped (the authors' behaviour).
We measured ``torch.where(mask, W, 0)`` at 4-5x the cost of the float multiply on this CPU
(68 vs 14 µs for 256×256), which cost DAPD ~10% of its update speed; ``where`` only differs
when the upstream gradient is already inf/NaN, i.e. when training has diverged anyway.
The bool ``mask`` is the source of truth (saved in the state dict); change it through
`set_mask` (or call `refresh()` after editing it) so the float copy follows.

Masks are keyed by task from the start: the buffer is ``[tasks, out, in]``; a single-task
network has ``tasks == 1``. ``active_task`` picks the pathway a 2-D input runs through; a
3-D input ``[tasks, batch, in]`` runs every task's pathway in one batched matmul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def write_task_mask(layer: nn.Module, mask: torch.Tensor, task: int) -> int:
    """Install ``mask`` as task ``task``'s slice of a layer's ``[tasks, *weight]`` bool ``mask`` and its
    float copy ``mask_f`` (masked layers and multi-task `TaskLinear` alike); returns how many entries
    changed. Bumps ``mask_version`` so that sparse executors rebuild what they cached."""
    mask = mask.to(device=layer.mask.device, dtype=torch.bool)
    if mask.shape != layer.mask.shape[1:]:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(layer.mask.shape[1:])}")
    changed = int((layer.mask[task] != mask).sum())
    layer.mask[task].copy_(mask)
    layer.mask_f[task].copy_(mask)
    layer.use_mask = True
    layer.mask_version += 1
    return changed


class _Masked:
    """The pathway half of a masked layer: a bool mask per task over the weight (the source of truth,
    saved), its float copy used by the forward pass, and the flags. Mixed into `nn.Linear` and
    `nn.Conv2d`; the layer's weight shape is the mask's shape after the task axis."""

    def _init_mask(self, tasks: int, device=None, dtype=None) -> None:
        if tasks < 1:
            raise ValueError(f"tasks must be >= 1, got {tasks}")
        shape = (tasks, *self.weight.shape)
        self.register_buffer("mask", torch.ones(shape, dtype=torch.bool, device=device))
        self.register_buffer("mask_f", torch.ones(shape, device=device, dtype=dtype), persistent=False)
        self.use_mask = False
        self.force_dense = 0        # > 0 inside `unmasked()`: run every stored weight
        self.active_task = 0
        self.mask_version = 0       # bumped on every mask change: executors cache on it
        # Optional sparse executor ``(layer, x) -> y | None`` for masked 2-D inputs (set by
        # `neuropath.engine.sparse_exec`); None, or a None result, means the dense path.
        self.executor = None

    @property
    def tasks(self) -> int:
        return self.mask.shape[0]

    def effective_weight(self, task: int | None = None) -> torch.Tensor:
        """The weight the forward pass uses for ``task`` (default: the active one)."""
        if not self.use_mask or self.force_dense:
            return self.weight
        t = self.active_task if task is None else task
        return self.weight * self.mask_f[t]

    def set_mask(self, mask: torch.Tensor, task: int = 0) -> int:
        """Install ``mask`` for ``task``; returns how many entries changed."""
        return write_task_mask(self, mask, task)

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-derive the float mask used by the forward pass from the bool ``mask``."""
        self.mask_f.copy_(self.mask)
        self.mask_version += 1

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self.refresh()

    def get_extra_state(self):
        return {"use_mask": self.use_mask, "active_task": self.active_task}

    def set_extra_state(self, state) -> None:
        self.use_mask = bool(state["use_mask"])
        self.active_task = int(state["active_task"])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tasks={self.tasks}, masked={self.use_mask}"


class MaskedLinear(_Masked, nn.Linear):
    """Linear layer computing ``x @ (W ⊙ m_task)^T + b``. Biases are never masked.

    While ``use_mask`` is False (a dense network) or ``force_dense`` is set (inside
    `unmasked()`), the layer is an ordinary `nn.Linear` with no masking cost.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, tasks: int = 1,
                 device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_mask(tasks, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and self.use_mask and not self.force_dense and self.tasks > 1 and x.shape[0] == self.tasks:
            w = self.weight * self.mask_f                         # [T, out, in]
            y = torch.bmm(x, w.transpose(1, 2))
            return y if self.bias is None else y + self.bias
        if self.executor is not None and self.use_mask and not self.force_dense:
            y = self.executor(self, x)
            if y is not None:
                return y
        return F.linear(x, self.effective_weight(), self.bias)


class MaskedConv2d(_Masked, nn.Conv2d):
    """2-D convolution with ``W ⊙ m_task`` as its kernel (DQN's ``--mask-conv``); biases never masked."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 *, tasks: int = 1, device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         device=device, dtype=dtype)
        self._init_mask(tasks, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


MASKED_LAYERS = (MaskedLinear, MaskedConv2d)


class MaskedMLP(nn.Sequential):
    """A chain of masked linear layers with activations between them, as ``nn.Sequential`` (same children,
    same state-dict keys), which can hand a whole forward pass to one ``executor`` ``(mlp, x) -> y | None``.

    Why: a per-layer executor pays its overhead (an autograd node, transposes to and from the kernels'
    layout, an activation over a strided view) once per layer and call; a network-level one keeps the
    activations in the kernels' layout from the input to the output and fuses bias and ReLU into them
    (`neuropath.engine.sparse_exec`). None, or a None result, runs the layers one by one."""

    executor = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.executor is not None:
            y = self.executor(self, x)
            if y is not None:
                return y
        return super().forward(x)
