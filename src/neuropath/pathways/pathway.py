"""`Pathway`: one masked network with its method (which weights), its schedule (when) and
the optimizer whose state must follow the mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .masks import copy_masks, layer_density, masked_layers, zero_masked_weights
from .methods import MaskUpdate, PathwayMethod
from .optim import reset_optimizer_state
from .schedule import MaskSchedule
from .scores import LossClosure

PRUNE_MODES = ("keep", "zero")


class Pathway:
    """Keeps ``net``'s mask under ``method`` on ``schedule``.

    After every mask change: the optimizer's moments are zeroed where the mask changed
    (unless ``reset_optimizer=False``, RLx2's behaviour), masks are copied into the ``tied``
    networks (a target critic runs its critic's pathway), and with ``prune="zero"`` inactive
    weights lose their values and newly activated ones start from zero, in the tied networks
    too (sparse training). Default ``"keep"``: inactive weights keep their values, as in the
    DAPD authors' code, and resume from them if re-selected.
    """

    def __init__(self, net: nn.Module, method: PathwayMethod, schedule: MaskSchedule,
                 optimizer: torch.optim.Optimizer | None = None, *, tied: Sequence[nn.Module] = (),
                 prune: str = "keep", reset_optimizer: bool = True) -> None:
        if prune not in PRUNE_MODES:
            raise ValueError(f"unknown prune mode {prune!r}; allowed: {', '.join(PRUNE_MODES)}")
        self.net, self.method, self.schedule = net, method, schedule
        self.optimizer, self.tied, self.prune = optimizer, tuple(tied), prune
        self.reset_optimizer = reset_optimizer
        self.updates = 0

    @property
    def frozen(self) -> bool:
        return self.schedule.frozen

    def init(self, loss: LossClosure | None, *, task: int = 0) -> MaskUpdate:
        return self._apply(self.method.init(self.net, loss, task=task), task)

    def maybe_update(self, step: int, loss: LossClosure, *, episode_end: bool = False,
                     task: int = 0) -> MaskUpdate | None:
        if not self.due(step, episode_end=episode_end):
            return None
        return self.update(step, loss, task=task)

    def due(self, step: int, *, episode_end: bool = False) -> bool:
        return self.schedule.due(step, episode_end=episode_end)

    def update(self, step: int, loss: LossClosure, *, task: int = 0) -> MaskUpdate:
        before = {n: m.mask[task].clone() for n, m in masked_layers(self.net).items()}
        result = self.method.update(self.net, loss, step, task=task)
        layers = masked_layers(self.net)
        if self.optimizer is not None and self.reset_optimizer:
            for name, m in layers.items():
                reset_optimizer_state(self.optimizer, m.weight, before[name] != m.mask[task])
        self.updates += 1
        new_on = {name: m.mask[task] & ~before[name] for name, m in layers.items()}
        return self._apply(result, task, new_on)

    def _apply(self, result: MaskUpdate, task: int,
               new_on: dict[str, torch.Tensor] | None = None) -> MaskUpdate:
        for net in (self.net, *self.tied):
            if net is not self.net:
                copy_masks(self.net, net)
            if self.prune == "zero":
                zero_masked_weights(net, task)
                if new_on is not None:
                    _zero_where(net, new_on)
        return result

    def observe(self, step: int, metric: float) -> None:
        self.schedule.observe(step, metric)

    def layer_density(self, task: int = 0) -> dict[str, float]:
        return layer_density(self.net, task)

    def state_dict(self) -> dict:
        return {"method": self.method.state_dict(), "schedule": self.schedule.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])


@torch.no_grad()
def _zero_where(net: nn.Module, where: dict[str, torch.Tensor]) -> None:
    for m, w in zip(masked_layers(net).values(), where.values(), strict=True):
        m.weight.masked_fill_(w, 0.0)
