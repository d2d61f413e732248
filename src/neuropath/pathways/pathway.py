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

    After every mask change: the optimizer's moments are zeroed where the mask changed,
    masks are copied into the ``tied`` networks (a target critic runs its critic's pathway),
    and with ``prune="zero"`` inactive weights lose their values (default ``"keep"``: they
    keep them, as in the authors' code, and resume from them if re-selected).
    """

    def __init__(self, net: nn.Module, method: PathwayMethod, schedule: MaskSchedule,
                 optimizer: torch.optim.Optimizer | None = None, *, tied: Sequence[nn.Module] = (),
                 prune: str = "keep") -> None:
        if prune not in PRUNE_MODES:
            raise ValueError(f"unknown prune mode {prune!r}; allowed: {', '.join(PRUNE_MODES)}")
        self.net, self.method, self.schedule = net, method, schedule
        self.optimizer, self.tied, self.prune = optimizer, tuple(tied), prune
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
        if self.optimizer is not None:
            for name, m in masked_layers(self.net).items():
                reset_optimizer_state(self.optimizer, m.weight, before[name] != m.mask[task])
        self.updates += 1
        return self._apply(result, task)

    def _apply(self, result: MaskUpdate, task: int) -> MaskUpdate:
        if self.prune == "zero":
            zero_masked_weights(self.net, task)
        for other in self.tied:
            copy_masks(self.net, other)
            if self.prune == "zero":
                zero_masked_weights(other, task)
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
