"""Per-task replay: one ring buffer per task stored as ``[tasks, capacity, ...]`` arrays, so a
multi-task batch ``[tasks, batch, ...]`` is one gather (every vector-env step adds one row per task)."""

from __future__ import annotations

import numpy as np
import torch

from ..algos.mtsac import TaskBatch


class TaskReplay:
    def __init__(self, tasks: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.tasks, self.capacity, self.device = tasks, capacity, device
        self.obs = np.zeros((tasks, capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((tasks, capacity, obs_dim), np.float32)
        self.action = np.zeros((tasks, capacity, act_dim), np.float32)
        self.reward = np.zeros((tasks, capacity, 1), np.float32)
        self.not_done = np.zeros((tasks, capacity, 1), np.float32)
        self.pos, self.size = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """One transition per task (row t = task t)."""
        i = self.pos
        self.obs[:, i], self.action[:, i], self.next_obs[:, i] = obs, action, next_obs
        self.reward[:, i, 0] = reward
        self.not_done[:, i, 0] = 1.0 - np.asarray(terminated, np.float32)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator, *, recent: int | None = None) -> TaskBatch:
        """``batch`` transitions per task, uniformly (independently per task) from all rows, or
        from the ``recent`` newest rows (DAPD scores on recent data)."""
        span = self.size if recent is None else min(recent, self.size)
        offsets = rng.integers(0, span, size=(self.tasks, batch))
        rows = (self.pos - span + offsets) % self.capacity       # relative to the oldest kept row
        t = np.arange(self.tasks)[:, None]

        def take(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a[t, rows], device=self.device)
        return TaskBatch(take(self.obs), take(self.action), take(self.reward), take(self.next_obs),
                         take(self.not_done))

    # ---- checkpoints: the filled rows, oldest first ----------------------------------------------

    _FIELDS = ("obs", "action", "reward", "next_obs", "not_done")

    def _ordered(self, a: np.ndarray) -> np.ndarray:
        rows = (self.pos - self.size + np.arange(self.size)) % self.capacity
        return a[:, rows]

    def save(self, path) -> None:
        with open(path, "wb") as f:              # exact file name (np.savez would append .npz)
            np.savez(f, **{k: self._ordered(getattr(self, k)) for k in self._FIELDS})

    def load(self, path) -> None:
        with np.load(path) as data:
            n = data["obs"].shape[1]
            if data["obs"].shape[0] != self.tasks or n > self.capacity:
                raise ValueError(f"replay of shape {data['obs'].shape} does not fit {self.tasks} tasks × {self.capacity}")
            for k in self._FIELDS:
                getattr(self, k)[:, :n] = data[k]
        self.size, self.pos = n, n % self.capacity
