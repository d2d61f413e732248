"""Dynamic sparse training: SET, RigL and RLx2's topology evolution, as one drop/grow rule.

Every layer keeps a fixed number of active weights, set once by `allocation.layer_counts`
(ERK or uniform). At each update (when is the schedule's business, usually every ΔT steps
until an end step), with the cosine-decayed fraction ζ_t = ζ_0/2·(1 + cos(π·t/T_end)):

1. drop the k = ⌊ζ_t·n_active⌋ active weights of smallest magnitude;
2. grow k connections among the positions outside the kept set -- just-dropped ones
   included -- by uniform random choice (SET) or by the largest dense-gradient magnitude
   |∂L/∂(θ⊙m)| (RigL, RLx2);
3. newly activated weights start at zero; a just-dropped weight grown back keeps its value;
   dropped weights are zeroed.

The counts never change, so the sparsity stays exactly what allocation gave. How the
methods differ (grow rule, ζ_0, ΔT, initial mask, optimizer reset) is in `DST_PRESETS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .allocation import layer_counts
from .masks import density, masked_layers
from .methods import MaskUpdate
from .scores import LossClosure, grad_scores
from .topk import topk_flat

GROW_RULES = ("random", "gradient")
INIT_RULES = ("random", "magnitude")


@dataclass(frozen=True)
class DSTDefaults:
    """A method's published knobs. ``end`` is the fraction of training after which the
    topology stops changing; ``reset_optimizer`` zeroes Adam's moments of changed weights."""
    grow: str
    drop_fraction: float
    every: int
    end: float
    init: str
    reset_optimizer: bool
    source: str


DST_PRESETS: dict[str, DSTDefaults] = {
    # Graesser et al. 2022 (rigl/rl), SAC sweep winners on Walker2d: SET ΔT 250, ζ0 0.3.
    "set": DSTDefaults("random", 0.3, 250, 0.8, "random", True, "Graesser et al. 2022, SAC"),
    # Graesser et al. 2022: RigL ΔT 1000, ζ0 0.5, cosine to 0 at 80% of training.
    "rigl": DSTDefaults("gradient", 0.5, 1000, 0.8, "random", True, "Graesser et al. 2022, SAC"),
    # RLx2 code: ΔT 10,000, ζ0 0.5, cosine over the whole run, initial mask = top-|w| of the
    # fresh init, Adam moments never reset (its reset only touches SGD momentum).
    "rlx2": DSTDefaults("gradient", 0.5, 10_000, 1.0, "magnitude", False, "Tan et al. 2023, RLx2 code"),
}


def cosine_fraction(step: int, initial: float, end_step: int) -> float:
    """ζ_t = ζ_0/2·(1 + cos(π·t/T_end)); zero from ``end_step`` on."""
    if end_step <= 0 or step >= end_step:
        return 0.0
    return 0.5 * initial * (1.0 + math.cos(math.pi * step / end_step))


class DynamicSparse:
    """Drop-by-magnitude / grow-by-rule with fixed per-layer counts (SET, RigL, RLx2).

    Args:
        keep_ratio: fraction of the network's weights that are active.
        grow: ``"random"`` (SET) or ``"gradient"`` (RigL, RLx2).
        drop_fraction: ζ_0, cosine-decayed to zero at ``end_step``.
        end_step: the step T_end of the cosine decay.
        distribution: per-layer allocation, ``"erk"`` or ``"uniform"``.
        init: initial mask, ``"random"`` (SET, RigL) or ``"magnitude"`` (top-|w| at init, RLx2).
    """

    data = "replay"         # the grow gradient is taken on a uniform replay minibatch

    def __init__(self, keep_ratio: float, *, grow: str = "gradient", drop_fraction: float = 0.5,
                 end_step: int = 1, distribution: str = "erk", init: str = "random", seed: int = 0) -> None:
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f"keep ratio must be in (0, 1], got {keep_ratio}")
        if grow not in GROW_RULES:
            raise ValueError(f"unknown grow rule {grow!r}; allowed: {', '.join(GROW_RULES)}")
        if init not in INIT_RULES:
            raise ValueError(f"unknown initial mask rule {init!r}; allowed: {', '.join(INIT_RULES)}")
        if not 0.0 <= drop_fraction <= 1.0:
            raise ValueError(f"drop fraction must be in [0, 1], got {drop_fraction}")
        self.keep_ratio, self.grow, self.drop_fraction = keep_ratio, grow, drop_fraction
        self.end_step, self.distribution, self.init_rule = end_step, distribution, init
        self.generator = torch.Generator().manual_seed(seed)

    def counts(self, net: nn.Module) -> dict[str, int]:
        shapes = {n: tuple(m.weight.shape) for n, m in masked_layers(net).items()}
        return layer_counts(shapes, self.keep_ratio, self.distribution)

    # ---- the initial mask ------------------------------------------------------------------

    @torch.no_grad()
    def init(self, net: nn.Module, loss: LossClosure | None, *, task: int = 0) -> MaskUpdate:
        per_layer = {}
        for (name, m), k in zip(masked_layers(net).items(), self.counts(net).values()):
            if self.init_rule == "magnitude":
                score = m.weight.detach().abs().flatten()
            else:
                score = torch.rand(m.weight.numel(), generator=self.generator).to(m.weight.device)
            mask = topk_flat(score, k).view_as(m.weight)
            m.use_mask = True
            per_layer[name] = m.set_mask(mask, task)
            m.weight.masked_fill_(~mask, 0.0)
        return MaskUpdate(sum(per_layer.values()), density(net, task), task, per_layer)

    # ---- one drop/grow step ----------------------------------------------------------------

    def update(self, net: nn.Module, loss: LossClosure | None, step: int, *, task: int = 0) -> MaskUpdate:
        zeta = cosine_fraction(step, self.drop_fraction, self.end_step)
        layers = masked_layers(net)
        if self.grow == "gradient":
            if loss is None:
                raise ValueError("gradient growth needs a loss closure")
            grow_scores = grad_scores(net, loss)
        else:
            grow_scores = {n: torch.rand(m.weight.shape, generator=self.generator).to(m.weight.device)
                           for n, m in layers.items()}
        per_layer = {}
        with torch.no_grad():
            for name, m in layers.items():
                per_layer[name] = self._drop_grow(m, grow_scores[name], zeta, task)
        return MaskUpdate(sum(per_layer.values()), density(net, task), task, per_layer)

    @staticmethod
    def _drop_grow(m: nn.Module, grow_score: torch.Tensor, zeta: float, task: int) -> int:
        old = m.mask[task].flatten()
        n_active = int(old.sum())
        k = int(zeta * n_active)
        if k == 0:
            return 0
        w = m.weight.view(-1)
        magnitude = torch.where(old, w.abs(), torch.full_like(w, -float("inf")))
        kept = topk_flat(magnitude, n_active - k)
        candidates = torch.where(kept, torch.full_like(w, -float("inf")), grow_score.flatten().float())
        grown = topk_flat(candidates, k)
        new = kept | grown
        w.masked_fill_(grown & ~old, 0.0)      # brand-new connections start at zero
        w.masked_fill_(~new, 0.0)              # dropped ones are gone
        return m.set_mask(new.view_as(m.weight), task)

    # ---- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
