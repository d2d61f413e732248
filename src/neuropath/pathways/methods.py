"""*Which* weights form a pathway. A method scores a network with a loss closure and writes
masks into it; it never knows which algorithm the loss belongs to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from .masks import density, layer_members, masked_layers, set_masks
from .multitask import install_task_masks
from .scores import DATA_SCORES, SCORES, LossClosure, Scores, network_scores
from .topk import l1_normalise, topk_masks


@dataclass
class MaskUpdate:
    """What one mask update did: entries changed (per layer and in all), resulting density."""
    changed: int
    density: float
    task: int = 0
    per_layer: dict[str, int] = field(default_factory=dict)


class PathwayMethod(Protocol):
    def init(self, net: nn.Module, loss: LossClosure | None, *, task: int = 0) -> MaskUpdate: ...
    def update(self, net: nn.Module, loss: LossClosure, step: int, *, task: int = 0) -> MaskUpdate: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


__all__ = ["DAPD", "DATA_SCORES", "Dense", "MaskUpdate", "PathwayMethod", "RandomStatic", "SCORES", "StaticSNIP",
           "TaskDAPD"]


def _install(net: nn.Module, masks: Scores, task: int) -> MaskUpdate:
    per_layer = set_masks(net, masks, task)
    return MaskUpdate(sum(per_layer.values()), density(net, task), task, per_layer)


def _check(keep_ratio: float, moving_average: int, score: str, synflow_rounds: int) -> None:
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep ratio must be in (0, 1], got {keep_ratio}")
    if moving_average < 1:
        raise ValueError(f"moving average length K must be >= 1, got {moving_average}")
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; allowed: {', '.join(SCORES)}")
    if synflow_rounds < 1:
        raise ValueError(f"synflow needs at least 1 round, got {synflow_rounds}")


class DAPD:
    """Data Adaptive Pathway Discovery: m = T_k(mean of the last K L1-normalised scores).

    Each call to `update` scores the network on a fresh batch of recent data (the caller's
    closure), pushes the normalised score into a FIFO of length ``moving_average`` (K) and
    keeps the top ``keep_ratio`` of the FIFO's mean, globally across the network's layers.
    """

    def __init__(self, keep_ratio: float, moving_average: int = 1, scope: str = "global",
                 score: str = "snip", seed: int = 0, synflow_rounds: int = 100) -> None:
        _check(keep_ratio, moving_average, score, synflow_rounds)
        self.keep_ratio, self.k, self.scope, self.score = keep_ratio, moving_average, scope, score
        self.synflow_rounds = synflow_rounds
        self.generator = torch.Generator().manual_seed(seed)
        self.window: dict[int, deque[Scores]] = {}

    def _score(self, net: nn.Module, loss: LossClosure | None) -> Scores:
        return network_scores(self.score, net, loss, keep_ratio=self.keep_ratio,
                              synflow_rounds=self.synflow_rounds, generator=self.generator)

    def init(self, net: nn.Module, loss: LossClosure | None, *, task: int = 0) -> MaskUpdate:
        self.window[task] = deque(maxlen=self.k)
        return self.update(net, loss, 0, task=task)

    def update(self, net: nn.Module, loss: LossClosure | None, step: int, *, task: int = 0) -> MaskUpdate:
        fifo = self.window.setdefault(task, deque(maxlen=self.k))
        fifo.append({n: s.detach() for n, s in l1_normalise(self._score(net, loss)).items()})
        mean = {n: torch.stack([s[n] for s in fifo]).mean(0) for n in fifo[0]}
        members = layer_members(net) if self.scope == "member" else None
        return _install(net, topk_masks(mean, self.keep_ratio, scope=self.scope, members=members), task)

    def state_dict(self) -> dict:
        return {"window": {t: list(f) for t, f in self.window.items()},
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.window = {int(t): deque(f, maxlen=self.k) for t, f in state["window"].items()}
        self.generator.set_state(state["generator"].cpu())   # loaded onto the run's device


class TaskDAPD:
    """DAPD per task, on a multi-task network's `TaskLinear` copies: task t's mask = top-k (global over
    the layers) of the mean of its last K L1-normalised scores. One batched scoring pass serves every
    task: the loss is the sum of the tasks' losses and task t's reaches only copy t."""

    def __init__(self, keep_ratio: float, moving_average: int = 1, score: str = "snip", seed: int = 0,
                 synflow_rounds: int = 100) -> None:
        _check(keep_ratio, moving_average, score, synflow_rounds)
        self.keep_ratio, self.k, self.score, self.synflow_rounds = keep_ratio, moving_average, score, synflow_rounds
        self.generator = torch.Generator().manual_seed(seed)
        self.window: list[dict[str, torch.Tensor]] = []

    def update(self, net: nn.Module, loss: LossClosure | None) -> list[int]:
        """Score, average, install every task's mask; returns the entries changed per task."""
        scores = network_scores(self.score, net, loss, keep_ratio=self.keep_ratio,
                                synflow_rounds=self.synflow_rounds, generator=self.generator)
        tasks = next(iter(scores.values())).shape[0]
        per_task = [l1_normalise({n: s[t] for n, s in scores.items()}) for t in range(tasks)]
        self.window.append({n: torch.stack([p[n] for p in per_task]) for n in scores})
        self.window = self.window[-self.k:]
        mean = {n: torch.stack([w[n] for w in self.window]).mean(0) for n in scores}
        return install_task_masks(net, mean, self.keep_ratio)

    def state_dict(self) -> dict:
        return {"window": self.window, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.window = list(state["window"])[-self.k:]
        if "generator" in state:                  # runs saved before scores other than snip lack it
            self.generator.set_state(state["generator"].cpu())


class StaticSNIP(DAPD):
    """The initial SNIP mask, kept for the whole run (the 'no warm-up' ablation)."""

    def __init__(self, keep_ratio: float, scope: str = "global", score: str = "snip", seed: int = 0,
                 synflow_rounds: int = 100) -> None:
        super().__init__(keep_ratio, 1, scope, score, seed, synflow_rounds)


class RandomStatic(DAPD):
    """A uniformly random mask of exactly the same size as the SNIP one, never changed."""

    def __init__(self, keep_ratio: float, scope: str = "global", seed: int = 0) -> None:
        super().__init__(keep_ratio, 1, scope, "random", seed)


class Dense:
    """No pathway: every weight active, nothing masked."""

    def init(self, net: nn.Module, loss: LossClosure | None, *, task: int = 0) -> MaskUpdate:
        for m in masked_layers(net).values():
            m.use_mask = False
        return MaskUpdate(0, 1.0, task)

    def update(self, net: nn.Module, loss: LossClosure | None, step: int, *, task: int = 0) -> MaskUpdate:
        return MaskUpdate(0, 1.0, task)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
