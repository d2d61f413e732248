"""`Pathway`: one masked network with its method (which weights), its schedule (when) and
the optimizer whose state must follow the mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .masks import copy_masks, layer_density, masked_layers, zero_masked_weights
from .methods import MaskUpdate, PathwayMethod
from .optim import OwnAgeBiasCorrection, reset_optimizer_state, restart_where_zero
from .schedule import MaskSchedule
from .scores import LossClosure

PRUNE_MODES = ("keep", "zero")
ENTRY_RULES = ("global", "own-age")


class Pathway:
    """Keeps ``net``'s mask under ``method`` on ``schedule``.

    After every mask change: the optimizer's moments are zeroed where the mask changed
    (unless ``reset_optimizer=False``, RLx2's behaviour), masks are copied into the ``tied``
    networks (a target critic runs its critic's pathway), and with ``prune="zero"`` inactive
    weights lose their values and newly activated ones start from zero, in the tied networks
    too (sparse training). Default ``"keep"``: inactive weights keep their values, as in the
    DAPD authors' code, and resume from them if re-selected.

    ``entry_rule="own-age"``: an entry that joins the pathway with zero Adam moments gets Adam's bias
    correction from its own age, not the tensor's step count (`OwnAgeBiasCorrection`), so its first
    steps are of the ordinary size lr instead of several times it.
    """

    def __init__(self, net: nn.Module, method: PathwayMethod, schedule: MaskSchedule,
                 optimizer: torch.optim.Optimizer | None = None, *, tied: Sequence[nn.Module] = (),
                 prune: str = "keep", reset_optimizer: bool = True, entry_rule: str = "global") -> None:
        if prune not in PRUNE_MODES:
            raise ValueError(f"unknown prune mode {prune!r}; allowed: {', '.join(PRUNE_MODES)}")
        if entry_rule not in ENTRY_RULES:
            raise ValueError(f"unknown entry rule {entry_rule!r}; allowed: {', '.join(ENTRY_RULES)}")
        self.net, self.method, self.schedule = net, method, schedule
        self.optimizer, self.tied, self.prune = optimizer, tuple(tied), prune
        self.reset_optimizer = reset_optimizer
        self.entry_ages: OwnAgeBiasCorrection | None = None
        if entry_rule == "own-age" and optimizer is not None:
            self.entry_ages = OwnAgeBiasCorrection(optimizer, [m.weight for m in masked_layers(net).values()])
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
        if self.entry_ages is not None:
            for name, m in layers.items():
                self.entry_ages.restart(m.weight, restart_where_zero(self.optimizer, m.weight, new_on[name]))
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
        state = {"method": self.method.state_dict(), "schedule": self.schedule.state_dict(),
                 "updates": self.updates}
        if self.entry_ages is not None:
            state["entry_ages"] = self.entry_ages.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])
        if self.entry_ages is not None and "entry_ages" in state:
            self.entry_ages.load_state_dict(state["entry_ages"])


@torch.no_grad()
def _zero_where(net: nn.Module, where: dict[str, torch.Tensor]) -> None:
    for m, w in zip(masked_layers(net).values(), where.values(), strict=True):
        m.weight.masked_fill_(w, 0.0)
