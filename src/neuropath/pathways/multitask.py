"""One network, one pathway per task: `TaskLinear` and the warm-up → freeze → shared life of its weights.

DESIGN.md, "Multi-task" (ours, from the seed's wording "warm-up: update the mask and corresponding
weights independently; freeze: fix the mask and merge the weights; gradient average for overlapped
mask"):

- **warm-up**: task t has its own weight copy W_t and mask m_t, trained by its own loss only. The
  layer stores the copies as one ``[T, out, in]`` parameter, so all tasks run in one batched matmul
  (``x [T, B, in] → [T, B, out]``) and task t's loss can only reach W_t ⊙ m_t.
- **freeze** (`merge`): W = Σ_t m_t ⊙ W_t / max(1, Σ_t m_t); an entry in no pathway keeps the mean of
  the copies. Every copy is set to W (and their Adam moments reset by the caller), so from here on
  the T slices are one shared weight stored T times.
- **shared** (`average_task_grads` after each backward): an entry used by several pathways gets the
  average of those tasks' gradients, Σ_t m_t ⊙ g_t / max(1, Σ_t m_t), written into every slice; with
  equal gradients and equal optimizer state the slices stay identical.

Biases are never masked; they are per task in warm-up, merged by their mean, then averaged over all
tasks. A layer marked ``per_task`` (the output heads of a multi-head network) never merges.
Storing T copies after the merge costs memory (10 × 256 × 256 floats = 2.6 MB), not compute.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import write_task_mask
from .topk import task_topk_masks


class TaskLinear(nn.Module):
    """Per-task linear layer: ``y[t] = x[t] @ (W_t ⊙ m_t)^T + b_t`` for every task t at once."""

    def __init__(self, in_features: int, out_features: int, tasks: int, *, per_task: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        if tasks < 1:
            raise ValueError(f"tasks must be >= 1, got {tasks}")
        self.in_features, self.out_features = in_features, out_features
        w = torch.empty(out_features, in_features, device=device, dtype=dtype)
        nn.init.xavier_normal_(w)                        # one init, copied: the tasks start equal
        self.weight = nn.Parameter(w.expand(tasks, -1, -1).clone())
        self.bias = nn.Parameter(torch.zeros(tasks, out_features, device=device, dtype=dtype))
        self.register_buffer("mask", torch.ones(tasks, out_features, in_features, dtype=torch.bool, device=device))
        self.register_buffer("mask_f", torch.ones(tasks, out_features, in_features, device=device, dtype=dtype),
                             persistent=False)
        self.use_mask = False
        self.per_task = per_task
        self.shared = False         # True after `merge`: the slices are one weight
        self.force_dense = 0        # > 0 inside `unmasked()`-style scoring: every stored weight
        self.mask_version = 0       # bumped on every mask change: a sparse executor caches on it
        self.executor = None        # engine.sparse_exec.TaskSparseExecutor, or None: dense bmm

    @property
    def tasks(self) -> int:
        return self.weight.shape[0]

    def effective_weight(self) -> torch.Tensor:
        if not self.use_mask or self.force_dense:
            return self.weight
        return self.weight * self.mask_f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.tasks:
            raise ValueError(f"TaskLinear expects [tasks={self.tasks}, batch, {self.in_features}], "
                             f"got {tuple(x.shape)}")
        if self.executor is not None and self.use_mask and not self.force_dense:
            y = self.executor(self, x)
            if y is not None:
                return y
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.effective_weight().transpose(1, 2))

    def set_mask(self, mask: torch.Tensor, task: int) -> int:
        """Install task ``task``'s mask; returns how many entries changed."""
        return write_task_mask(self, mask, task)

    @torch.no_grad()
    def merge(self) -> None:
        """Freeze: one weight from the task copies (see the module docstring); no-op for heads."""
        if self.per_task or self.shared:
            return
        m = self.mask_f if self.use_mask else torch.ones_like(self.mask_f)
        count = m.sum(0)
        merged = (m * self.weight).sum(0) / count.clamp(min=1)
        merged = torch.where(count > 0, merged, self.weight.mean(0))
        self.weight.copy_(merged.expand_as(self.weight))
        self.bias.copy_(self.bias.mean(0).expand_as(self.bias))
        self.shared = True

    @torch.no_grad()
    def average_task_grads(self) -> None:
        """After a backward pass on a shared layer: each entry's gradient is the mean over the
        tasks whose pathway holds it, the same in every slice. No-op in warm-up and for heads."""
        if not self.shared:
            return
        g = self.weight.grad
        if g is not None:
            m = self.mask_f if self.use_mask else torch.ones_like(self.mask_f)
            avg = (m * g).sum(0) / m.sum(0).clamp(min=1)
            g.copy_(avg.expand_as(g))
        if self.bias.grad is not None:
            self.bias.grad.copy_(self.bias.grad.mean(0).expand_as(self.bias.grad))

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        with torch.no_grad():
            self.mask_f.copy_(self.mask)
        self.mask_version += 1

    def get_extra_state(self):
        return {"use_mask": self.use_mask, "shared": self.shared, "per_task": self.per_task}

    def set_extra_state(self, state) -> None:
        self.use_mask, self.shared = bool(state["use_mask"]), bool(state["shared"])
        self.per_task = bool(state["per_task"])

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, tasks={self.tasks}, "
                f"masked={self.use_mask}, shared={self.shared}, per_task={self.per_task}")


def task_layers(net: nn.Module) -> dict[str, TaskLinear]:
    """All `TaskLinear` layers of ``net`` by qualified name, in module order."""
    return {name: m for name, m in net.named_modules() if isinstance(m, TaskLinear)}


def task_mlp(in_dim: int, hidden: list[int], out_dim: int, tasks: int, *, per_task_head: bool = False) -> nn.Sequential:
    """ReLU MLP of `TaskLinear` layers over ``[tasks, batch, features]``; ``per_task_head``: the
    output layer stays one head per task (multi-head), never merged."""
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        layers.append(TaskLinear(a, b, tasks, per_task=per_task_head and last))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def merge_task_weights(net: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Freeze every task layer of ``net``: merge the copies and reset their optimizer moments
    (the copies' moments differ; equal moments keep the shared slices identical)."""
    for layer in task_layers(net).values():
        if layer.per_task:
            continue
        layer.merge()
        if optimizer is not None:
            for p in (layer.weight, layer.bias):
                state = optimizer.state.get(p)
                for value in (state or {}).values():
                    if torch.is_tensor(value) and value.shape == p.shape:
                        value.zero_()


def average_task_grads(net: nn.Module) -> None:
    """Call between ``backward()`` and ``optimizer.step()`` once the layers are shared."""
    for layer in task_layers(net).values():
        layer.average_task_grads()


# ---- per-task pathway discovery ----------------------------------------------------------------

def install_task_masks(net: nn.Module, scores: dict[str, torch.Tensor], keep_ratio: float) -> list[int]:
    """Task t's mask = the top ``keep_ratio`` of ``scores[layer][t]``, global over the layers (exactly
    k per task); returns the entries changed per task."""
    layers = task_layers(net)
    masks = task_topk_masks(scores, keep_ratio)
    return [sum(layers[n].set_mask(masks[n][t], t) for n in masks) for t in range(next(iter(masks.values())).shape[0])]


def task_density(net: nn.Module) -> list[float]:
    """Per task: the fraction of the network's maskable weights in its pathway."""
    layers = task_layers(net).values()
    total = sum(m.mask[0].numel() for m in layers)
    tasks = next(iter(layers)).tasks
    return [sum(int(m.mask[t].sum()) if m.use_mask else m.mask[t].numel() for m in layers) / total
            for t in range(tasks)]
