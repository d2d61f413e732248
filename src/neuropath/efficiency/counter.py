"""The one FLOP counter of every run kind: each linear and convolution layer counts the multiply-accumulates
of the passes autograd really runs through it, while the algorithm's own code runs once on its networks.

Why hooks and not torch's `FlopCounterMode` alone: the networks run masked-dense (``W ⊙ m``), so a
shape-based counter charges every stored weight and cannot say what a pathway *needs*; a layer knows its
mask. Why not an analytic model per algorithm: it has to be written (and kept true) for every algorithm,
where the hooks count whatever update, acting or scoring code the algorithm has.

Convention (`FlopCounterMode`'s): 1 multiply-accumulate (MAC) = 2 FLOPs, matmuls and convolutions only
(bias adds, activations, losses, optimizers, Polyak averaging and top-k are O(width), not O(weights)).
Per call of a layer on ``rows`` rows (samples; for a convolution samples × output positions; for a task
layer the samples of one task, each meeting only its task's slice):

* forward: rows · weights, and rows · nnz on the pathway (nnz: its active weights; all of them when the
  layer is dense or runs inside `unmasked()`);
* input gradient, rows · the same, if autograd computes it: an identity probe on the layer's input sees
  the gradient pass through it. The first layer on data has none; neither has a layer whose upstream
  gradient nobody asked for (``autograd.grad`` w.r.t. one network's weights skips the rest);
* weight gradient, rows · the same, if autograd computes it: a probe on the layer's output sees the
  gradient arrive, and a hook on the weight sees its gradient computed in the same backward pass.

So on dense networks the counts equal `FlopCounterMode`'s exactly (tested for SAC, PPO, DQN, IQL, BCQ).
What the hooks cannot see: matmuls outside a layer's forward (SynFlow multiplies the weights itself) and
double backward (GraSP's Hessian-vector product). Those two scores run every network dense, so their
passes are counted by `FlopCounterMode` (`scoring_flops`), whose count is then the exact one.

A count keeps, per layer, the row-passes that ran on the mask, so a pass counted at one set of masks is
priced at another (`Macs.at`): the cost of a pass is rows · nnz whatever the weights are, which is how a
SAC run's warm-up updates are charged at the masks logged in its ``pathway.jsonl``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..pathways.multitask import TaskLinear

MAC_FLOPS = 2
CONVENTION = ("1 MAC = 2 FLOPs (torch FlopCounterMode's convention); matmuls only: bias adds, "
              "activations, losses, optimizer and Polyak updates are not counted")
COUNTED = (nn.Linear, nn.Conv2d, TaskLinear)
"""the layers that count their MACs (`MaskedLinear` and `MaskedConv2d` are among them)"""

MaskState = Mapping[str, Mapping[str, int]]
"""network -> layer -> active weights: a set of masks a count is priced at"""


# ---- what a count holds ----------------------------------------------------------------------------

@dataclass
class LayerMacs:
    """The MACs of one layer while `counting` ran: ``fixed`` on passes over every weight (a dense layer,
    or one inside `unmasked()`), ``masked_rows`` row-passes over the mask, ``masked`` their MACs at the
    masks of that moment, ``dense`` everything as if every weight were active."""
    dense: int = 0
    fixed: int = 0
    masked_rows: int = 0
    masked: int = 0

    def __sub__(self, other: "LayerMacs") -> "LayerMacs":
        return LayerMacs(self.dense - other.dense, self.fixed - other.fixed,
                         self.masked_rows - other.masked_rows, self.masked - other.masked)


@dataclass
class Macs:
    """One network's MACs while `counting` ran, by layer name (as in ``net.named_modules()``)."""
    layers: dict[str, LayerMacs] = field(default_factory=dict)

    @property
    def dense(self) -> int:
        """Every weight active: what a dense network of these shapes does (and `FlopCounterMode` counts)."""
        return sum(x.dense for x in self.layers.values())

    @property
    def active(self) -> int:
        """On the pathway, at the masks the layers held while counting."""
        return sum(x.fixed + x.masked for x in self.layers.values())

    def at(self, nnz: Mapping[str, int] | None) -> int:
        """On the pathway had each masked layer held ``nnz[layer]`` active weights (``None``: as counted)."""
        if nnz is None:
            return self.active
        return sum(x.fixed + x.masked_rows * int(nnz[name]) if x.masked_rows else x.fixed + x.masked
                   for name, x in self.layers.items())

    def __sub__(self, other: "Macs") -> "Macs":
        """This pass minus a part of it (an update with the actor step minus one without)."""
        return Macs({n: x - other.layers.get(n, LayerMacs()) for n, x in self.layers.items()})


Counts = dict[str, Macs]
"""network name -> its MACs"""


def dense_flops(counts: Mapping[str, Macs]) -> int:
    return MAC_FLOPS * sum(m.dense for m in counts.values())


def pathway_flops(counts: Mapping[str, Macs], masks: MaskState | None = None) -> int:
    """FLOPs on the pathway, at the counted masks or priced at ``masks`` (networks it names)."""
    masks = masks or {}
    return MAC_FLOPS * sum(m.at(masks.get(n)) for n, m in counts.items())


def minus(a: Mapping[str, Macs], b: Mapping[str, Macs]) -> Counts:
    return {n: m - b[n] if n in b else m for n, m in a.items()}


# ---- what a layer multiplies ------------------------------------------------------------------------

def layer_weights(layer: nn.Module) -> tuple[int, int]:
    """(stored weights, active weights) of a layer as its masks stand, summed over tasks (the parameter
    count; `unmasked()` does not change it)."""
    dense = layer.weight.numel()
    if not getattr(layer, "use_mask", False):
        return dense, dense
    if isinstance(layer, TaskLinear):
        return dense, int(layer.mask.sum())
    return dense, int(layer.mask[layer.active_task].sum())


def _call(layer: nn.Module, x: torch.Tensor) -> tuple[int, int, int | None]:
    """(rows, weights a row meets, active weights a row meets or None when every weight takes part) of one
    call of ``layer`` on ``x``."""
    dense = getattr(layer, "force_dense", 0) or not getattr(layer, "use_mask", False)
    if isinstance(layer, TaskLinear):                 # [tasks, batch, in]: a task's rows meet its own slice
        return x.numel() // layer.in_features // layer.tasks, layer.weight.numel(), \
            None if dense else int(layer.mask.sum())
    if isinstance(layer, nn.Conv2d):                  # every output position is one row of the weight
        rows = (x.shape[0] if x.dim() == 4 else 1) * _positions(layer, x)
    else:
        rows = x.numel() // layer.in_features
    weights = layer.weight.numel()
    if dense:
        return rows, weights, None
    mask = layer.mask
    if mask.shape[0] > 1 and x.dim() == 3 and x.shape[0] == mask.shape[0] and isinstance(layer, nn.Linear):
        return rows // mask.shape[0], weights * mask.shape[0], int(mask.sum())      # one bmm over the tasks
    return rows, weights, int(mask[layer.active_task].sum())


def _positions(conv: nn.Conv2d, x: torch.Tensor) -> int:
    """Output positions of a convolution on ``x`` ([batch, channels, h, w] or unbatched)."""
    if isinstance(conv.padding, str):
        raise ValueError("counting FLOPs of a convolution with string padding is not supported")
    size = 1
    for i, n in enumerate(x.shape[-2:]):
        k, s, p, d = conv.kernel_size[i], conv.stride[i], conv.padding[i], conv.dilation[i]
        size *= (n + 2 * p - d * (k - 1) - 1) // s + 1
    return size


# ---- the probes -------------------------------------------------------------------------------------

class _Probe(torch.autograd.Function):
    """Identity whose backward tells ``seen`` that a gradient passed: autograd runs it exactly when it
    computes the gradient at that point, so what it reports is what really ran. It returns a copy, not a
    view: an in-place activation after a layer (``ReLU(inplace=True)``) may not modify a custom
    Function's view."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, seen: Callable[[], None]) -> torch.Tensor:
        ctx.seen = seen
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ctx.seen()
        return grad, None


class _Counter:
    """The hooks of one `counting` block."""

    def __init__(self, nets: Mapping[str, nn.Module]) -> None:
        self.totals: Counts = {name: Macs() for name in nets}
        self.where: dict[int, tuple[str, str]] = {}      # id(layer) -> (network, layer name)
        self.pending: dict[int, list[LayerMacs]] = {}    # weight gradients of the backward pass under way
        self.cleanup_queued = False
        self.handles: list[Any] = []
        self.weight_hooked: set[int] = set()
        self.out_probe: dict[int, LayerMacs | None] = {}
        self.executors: list[tuple[nn.Module, Any]] = []    # sparse executors bypass the layers: off meanwhile
        for name, net in nets.items():
            for m in net.modules():
                if getattr(m, "executor", None) is not None:
                    self.executors.append((m, m.executor))
                    m.executor = None
            for layer_name, m in net.named_modules():
                if isinstance(m, COUNTED) and id(m) not in self.where:   # a shared layer counts once
                    self.where[id(m)] = (name, layer_name)
                    self.handles.append(m.register_forward_pre_hook(self.before))
                    self.handles.append(m.register_forward_hook(self.after))

    def add(self, layer: nn.Module, part: LayerMacs) -> None:
        net, name = self.where[id(layer)]
        mine = self.totals[net].layers.setdefault(name, LayerMacs())
        mine.dense += part.dense
        mine.fixed += part.fixed
        mine.masked_rows += part.masked_rows
        mine.masked += part.masked

    def before(self, layer: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        rows, weights, nnz = _call(layer, x)
        one = LayerMacs(rows * weights, rows * weights, 0, 0) if nnz is None else \
            LayerMacs(rows * weights, 0, rows, rows * nnz)
        self.add(layer, one)                                                    # forward
        grad = torch.is_grad_enabled()
        self.out_probe[id(layer)] = one if grad and layer.weight.requires_grad else None
        if grad and isinstance(x, torch.Tensor) and x.requires_grad:            # input gradient, if it runs
            return (_Probe.apply(x, lambda: self.add(layer, one)), *args[1:])
        return None

    def after(self, layer: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        one = self.out_probe.pop(id(layer), None)
        if one is None or not isinstance(out, torch.Tensor) or not out.requires_grad:
            return None
        key = id(layer)
        if key not in self.weight_hooked:
            self.weight_hooked.add(key)
            self.handles.append(layer.weight.register_hook(lambda g, k=key, m=layer: self.commit(k, m)))
        return _Probe.apply(out, lambda: self.reached(key, one))

    def reached(self, key: int, one: LayerMacs) -> None:
        """The gradient reached a layer's output: its weight gradient runs if the weight's is wanted."""
        self.pending.setdefault(key, []).append(one)
        if not self.cleanup_queued:       # whatever no weight hook claimed by the end of this pass never ran
            self.cleanup_queued = True    # (the engine's end-of-backward callback, as DistributedDataParallel's)
            torch.autograd.Variable._execution_engine.queue_callback(self.end_of_backward)

    def commit(self, key: int, layer: nn.Module) -> None:
        for one in self.pending.pop(key, []):
            self.add(layer, one)

    def end_of_backward(self) -> None:
        self.pending.clear()
        self.cleanup_queued = False

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        for m, executor in self.executors:
            m.executor = executor


@contextlib.contextmanager
def counting(nets: Mapping[str, nn.Module]) -> Iterator[Counts]:
    """Count every linear and convolution layer's MACs per network name while the block runs (forward and
    the backward passes it triggers); yields the counts, complete when the block ends. A layer in two of
    ``nets`` counts under the first. Sparse executors (`engine.sparse_exec`) would bypass the layers'
    forward, so they are switched off while counting (they compute the same function)."""
    counter = _Counter(nets)
    try:
        yield counter.totals
    finally:
        counter.close()


def count(nets: Mapping[str, nn.Module], fn: Callable[[], Any]) -> Counts:
    """The counts of running ``fn()`` once."""
    with counting(nets) as c:
        fn()
    return c


# ---- scoring passes ---------------------------------------------------------------------------------

HOOKED_SCORES = ("snip", "grad")
"""scores whose passes the hooks see (a gradient of the loss through the layers)"""
DENSE_SCORES = ("grasp", "synflow")
"""scores counted by `FlopCounterMode` (their matmuls are outside the layers' forward; they run dense)"""


def count_scoring(score: str, net: nn.Module, loss: Callable[[], torch.Tensor] | None,
                  nets: Mapping[str, nn.Module], *, keep_ratio: float = 1.0, synflow_rounds: int = 1) -> Counts:
    """The counts of one scoring pass of ``net`` by the run's own score function, with every network the loss
    runs through in ``nets``, as the caller set them up (`unmasked()` where the loop scores dense networks).
    SNIP and RigL's gradient are counted by the hooks; GraSP and SynFlow by `FlopCounterMode` (every
    network dense, see the module docstring), as one fixed line under ``net``'s name; magnitude and
    random cost nothing (``{}``)."""
    from ..pathways.scores import network_scores

    def run() -> None:
        network_scores(score, net, loss, keep_ratio=keep_ratio, synflow_rounds=synflow_rounds,
                       generator=torch.Generator().manual_seed(0))

    if score in HOOKED_SCORES:
        return count(nets, run)
    if score in DENSE_SCORES:
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as fc:
            run()
        macs = int(fc.get_total_flops()) // MAC_FLOPS
        name = next((n for n, m in nets.items() if m is net), "scored")
        return {name: Macs({"(all layers, FlopCounterMode)": LayerMacs(macs, macs, 0, 0)})}
    return {}


# ---- the bill and its text: one layout for every kind -------------------------------------------------

@dataclass
class Cost:
    """A line of a run's bill: how many times, and FLOPs in all, dense vs pathway."""
    count: int | None       # None on sums of unlike lines
    dense: int
    pathway: int

    @property
    def ratio(self) -> float | None:
        """dense / pathway; None where either is zero (a mask event has no dense counterpart)."""
        return self.dense / self.pathway if self.pathway and self.dense else None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "dense_flops": self.dense, "pathway_flops": self.pathway,
                "dense_macs": self.dense // MAC_FLOPS, "pathway_macs": self.pathway // MAC_FLOPS,
                "ratio": self.ratio}


def total(costs: Iterable[Cost], count: int | None = None) -> Cost:
    costs = list(costs)
    return Cost(count, sum(c.dense for c in costs), sum(c.pathway for c in costs))


def si(x: float) -> str:
    """3 significant digits with an SI prefix (12.3G): the one number format of every FLOP text."""
    e = 0
    while abs(x) >= 999.5 * 1000 ** e and e < 5:
        e += 1
    return f"{x / 1000 ** e:.3g}{' kMGTP'[e] if e else ''}"


def ratio_text(c: Cost) -> str:
    return "–" if c.ratio is None else f"{c.ratio:.2f}x"


BOLD = ("training", "total", "update")


def cost_table(title: str, rows: Mapping[str, Cost], *, count: bool) -> list[str]:
    """The cost table of every kind: a line per part, its count (whole-run tables), dense and pathway FLOPs,
    their ratio and the pathway's MACs; sums in bold."""
    head = f"| {title} |{' count |' if count else ''} dense FLOPs | pathway FLOPs | dense/pathway | pathway MACs |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, c in rows.items():
        bold = "**" if name in BOLD else ""
        n = f" {'' if c.count is None else format(c.count, ',')} |" if count else ""
        lines.append(f"| {bold}{name}{bold} |{n} {si(c.dense)} | {si(c.pathway)} | {ratio_text(c)} | "
                     f"{si(c.pathway / MAC_FLOPS)} |")
    return lines


@dataclass(frozen=True)
class NetParams:
    """Weights of one network (summed over tasks, or the mean per task where the text says so)."""
    weights: int
    active: int
    biases: int = 0


def params_table(params: Mapping[str, NetParams]) -> list[str]:
    """The parameter table of every kind (biases are never masked)."""
    lines = ["| network | weights | active weights | density | biases |", "|---|---|---|---|---|"]
    for n, v in params.items():
        lines.append(f"| {n} | {v.weights:,} | {v.active:,} | {v.active / max(v.weights, 1):.1%} | {v.biases:,} |")
    return lines


def report_text(heading: str, params: Mapping[str, NetParams], tables: Iterable[tuple[str, Mapping[str, Cost], bool]],
                footer: Iterable[str] = (), notes: Iterable[str] = ()) -> str:
    """Every kind's ``neuropath flops`` text: heading, convention, parameters, the cost tables, notes."""
    out = [heading, f"Convention: {CONVENTION}. MACs = FLOPs / 2.", ""]
    out += params_table(params)
    for title, rows, with_count in tables:
        out += [""] + cost_table(title, rows, count=with_count)
    out += list(footer)
    out += [f"Note: {n}." for n in notes]
    return "\n".join(out)


def net_params(net: nn.Module, tasks: int = 0) -> NetParams:
    """`NetParams` of a live network; ``tasks`` > 0: the mean per task of a task network."""
    layers = [m for m in net.modules() if isinstance(m, COUNTED)]
    per = max(tasks, 1)
    weights = sum(layer_weights(m)[0] for m in layers)
    active = sum(layer_weights(m)[1] for m in layers)
    biases = sum(0 if m.bias is None else m.bias.numel() for m in layers)
    return NetParams(weights // per, active // per, biases // per)
