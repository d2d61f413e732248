"""`TaskPathway`: a multi-task network's pathways (one per task, `TaskDAPD`) behind `Pathway`'s protocol.

A single-task `Pathway` keeps one mask; here every task's mask is scored and installed together, and the
freeze is more than a flag: the task copies merge into one shared weight (`merge_task_weights`, the
multi-task life in `multitask.py`). Keeping the protocol (``init``, ``due``, ``update``, ``observe``,
``frozen``, ``schedule``, ``state_dict``) lets the training loops' pathway driver run MT10 as it runs the
single-task loops; the merge is the freeze hook, run wherever the schedule freezes (at its freeze step or on
an evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .methods import TaskDAPD
from .multitask import merge_task_weights, task_density, task_layers
from .optim import reset_optimizer_state
from .schedule import MaskSchedule
from .scores import LossClosure


@dataclass
class TaskMaskUpdate:
    """What one mask update did, per task: entries changed and the density after it."""
    changed: list[int]
    density: list[float]


class TaskPathway:
    """Keeps ``net``'s per-task masks under ``method`` on ``schedule``; ``tied`` networks (the target critic)
    get every task's mask after each change and merge with ``net`` at the freeze. The optimizer's moments
    are zeroed where a task's mask changed, and for every merged weight at the freeze."""

    entry_ages = None                       # Adam's own-age bias correction is single-task only

    def __init__(self, net: nn.Module, method: TaskDAPD, schedule: MaskSchedule,
                 optimizer: torch.optim.Optimizer | None = None, *, tied: Sequence[nn.Module] = ()) -> None:
        self.net, self.method, self.schedule = net, method, schedule
        self.optimizer, self.tied = optimizer, tuple(tied)
        self.updates = 0

    @property
    def frozen(self) -> bool:
        return self.schedule.frozen

    def init(self, loss: LossClosure | None) -> TaskMaskUpdate:
        return self._install(loss)

    def due(self, step: int, *, episode_end: bool = False) -> bool:
        was = self.frozen
        due = self.schedule.due(step, episode_end=episode_end)
        self._merge_if_frozen(was)
        return due

    def update(self, step: int, loss: LossClosure) -> TaskMaskUpdate:
        self.updates += 1
        return self._install(loss)

    def observe(self, step: int, metric: float) -> None:
        was = self.frozen
        self.schedule.observe(step, metric)
        self._merge_if_frozen(was)

    def density(self) -> list[float]:
        """Per task: the fraction of the network's maskable weights in its pathway."""
        return task_density(self.net)

    def layer_density(self) -> dict[str, list[float]]:
        """Per layer, each task's density (a mask event's ``layers``)."""
        return {name: [float(m.mask[t].float().mean()) if m.use_mask else 1.0 for t in range(m.tasks)]
                for name, m in task_layers(self.net).items()}

    def _install(self, loss: LossClosure | None) -> TaskMaskUpdate:
        layers = task_layers(self.net)
        before = {n: m.mask.clone() for n, m in layers.items()}
        changed = self.method.update(self.net, loss)
        if self.optimizer is not None:                       # moments of a weight's old life go
            for n, m in layers.items():
                reset_optimizer_state(self.optimizer, m.weight, before[n] != m.mask)
        for other in self.tied:
            for src, dst in zip(layers.values(), task_layers(other).values(), strict=True):
                for t in range(src.tasks):
                    dst.set_mask(src.mask[t], t)
        return TaskMaskUpdate(changed, self.density())

    def _merge_if_frozen(self, was_frozen: bool) -> None:
        if self.frozen and not was_frozen:
            merge_task_weights(self.net, self.optimizer)
            for other in self.tied:
                merge_task_weights(other)

    def state_dict(self) -> dict:
        return {"method": self.method.state_dict(), "schedule": self.schedule.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if "method" not in state:            # checkpoints before the driver stored the method's state alone
            self.method.load_state_dict(state)
            return
        self.method.load_state_dict(state["method"])
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])
