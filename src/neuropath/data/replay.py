"""Uniform replay buffer in one packed tensor.

All fields of a transition sit in one row of a ``[capacity, width]`` tensor, so a minibatch
is one `randint` and one `index_select` (measured ~4% faster than per-field buffers). The
most recent transitions are contiguous in the ring, which is what DAPD's recent-data
window (L) reads: no second buffer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..algos.common import Batch


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: str | torch.device = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.obs_dim, self.act_dim, self.capacity = obs_dim, act_dim, int(capacity)
        self.width = 2 * obs_dim + act_dim + 2
        self.device = torch.device(device)
        self.storage = torch.empty(self.capacity, self.width, dtype=torch.float32, device=self.device)
        self.ptr = 0
        self.size = 0
        self._row = np.empty(self.width, dtype=np.float32)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        """Store one transition. ``terminated`` is true termination only: a time-limit
        truncation still bootstraps from ``next_obs`` (its real final observation)."""
        o, a = self.obs_dim, self.act_dim
        row = self._row
        row[:o] = obs
        row[o:o + a] = action
        row[o + a] = reward
        row[o + a + 1:o + a + 1 + o] = next_obs
        row[-1] = 0.0 if terminated else 1.0
        self.storage[self.ptr].copy_(torch.from_numpy(row))
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _split(self, rows: torch.Tensor) -> Batch:
        o, a = self.obs_dim, self.act_dim
        return Batch(rows[:, :o], rows[:, o:o + a], rows[:, o + a:o + a + 1],
                     rows[:, o + a + 1:o + a + 1 + o], rows[:, -1:])

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.device)
        return self._split(self.storage.index_select(0, idx))

    def sample_recent(self, batch_size: int, window: int) -> Batch:
        """A minibatch drawn uniformly from the ``window`` most recent transitions."""
        n = min(window, self.size)
        back = torch.randint(1, n + 1, (batch_size,), device=self.device)
        idx = (self.ptr - back) % self.capacity
        return self._split(self.storage.index_select(0, idx))

    # ---- persistence: only the filled rows are written -------------------------------

    def save(self, path: Path) -> None:
        np.save(path, self.storage[: self.size].cpu().numpy() if self.size < self.capacity
                else self.storage.cpu().numpy(), allow_pickle=False)

    def state_dict(self) -> dict:
        return {"ptr": self.ptr, "size": self.size, "width": self.width, "capacity": self.capacity}

    def load(self, path: Path, state: dict) -> None:
        """Restore rows saved by `save`. Into a buffer of another capacity (a run extended
        with more steps), the rows are laid out oldest first and the newest that fit kept."""
        if state["width"] != self.width:
            raise ValueError(f"replay rows have width {state['width']}, this run needs {self.width}")
        data = np.load(path, allow_pickle=False)
        size, ptr = int(state["size"]), int(state["ptr"])
        if data.shape[0] != size:
            raise ValueError(f"replay file holds {data.shape[0]} rows, checkpoint says {size}")
        if state["capacity"] != self.capacity:
            if size == state["capacity"]:            # the old ring was full: unroll it
                data = np.roll(data, -ptr, axis=0)
            data = data[-self.capacity:]
            size, ptr = data.shape[0], data.shape[0] % self.capacity
        self.storage[:size].copy_(torch.from_numpy(data))
        self.ptr, self.size = ptr, size
