"""Replay of DQN transitions with whole observations (uint8 images, or float vectors), a ring of ``capacity``.

This version stores each transition's observation and next observation whole (MinAtar: 2 × 400 bytes a
transition, 0.8 GB for 1M). It samples with torch's global generator, so a resumed run continues the
same stream; `sample_recent` reads DAPD's recent-data window. Atari's stacked 84×84 frames need the
frame-once layout of `FrameReplay` (28 KB a stacked observation would make 1M transitions 56 GB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..algos.dqn import DQNBatch


class ImageReplay:
    """``dtype``: the observations' (uint8 images; float32 for DQN's vector observations, e.g. CartPole)."""

    def __init__(self, obs_shape: tuple[int, ...], capacity: int, dtype: np.dtype | type = np.uint8) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity, self.obs_shape = int(capacity), tuple(obs_shape)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype)
        self.next_obs = np.zeros((self.capacity, *self.obs_shape), dtype)
        self.action = np.zeros(self.capacity, np.int64)
        self.reward = np.zeros(self.capacity, np.float32)
        self.not_done = np.zeros(self.capacity, np.float32)
        self.ptr = self.size = 0

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.action, self.reward, self.not_done))

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminal: bool,
            first: bool = False) -> None:
        """``terminal``: no bootstrap from ``next_obs`` (a termination, or a lost life in Atari);
        ``first`` (an episode's reset observation) matters only to `FrameReplay`."""
        i = self.ptr
        self.obs[i], self.next_obs[i] = obs, next_obs
        self.action[i], self.reward[i], self.not_done[i] = action, reward, 0.0 if terminal else 1.0
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _batch(self, idx: np.ndarray) -> DQNBatch:
        return DQNBatch(torch.from_numpy(self.obs[idx]), torch.from_numpy(self.action[idx]),
                        torch.from_numpy(self.reward[idx]), torch.from_numpy(self.next_obs[idx]),
                        torch.from_numpy(self.not_done[idx]))

    def sample(self, batch_size: int) -> DQNBatch:
        offsets = torch.randint(0, self.size, (batch_size,)).numpy()
        return self._batch((self.ptr - self.size + offsets) % self.capacity)

    def sample_recent(self, batch_size: int, window: int) -> DQNBatch:
        """From the last ``window`` transitions (DAPD's L)."""
        n = min(window, self.size)
        offsets = torch.randint(0, n, (batch_size,)).numpy()
        return self._batch((self.ptr - n + offsets) % self.capacity)

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:          # a handle: np.savez would append ".npz" to the name
            self._savez(f)

    def _savez(self, f) -> None:
        np.savez(f, obs=self.obs[:self.size] if self.size < self.capacity else self.obs,
                 next_obs=self.next_obs[:self.size] if self.size < self.capacity else self.next_obs,
                 action=self.action, reward=self.reward, not_done=self.not_done, ptr=self.ptr, size=self.size)

    def load(self, path: Path) -> None:
        """Read a saved buffer; its capacity may differ from ours (a resumed run with a larger
        ``--steps``): the transitions are laid out oldest first and the newest kept."""
        with np.load(path) as f:
            ptr, size = int(f["ptr"]), int(f["size"])
            cap = len(f["action"])
            order = (np.arange(size) + (ptr - size)) % cap          # oldest → newest in the saved ring
            stored = {k: f[k] for k in ("obs", "next_obs", "action", "reward", "not_done")}
        keep = order[-self.capacity:]
        n = len(keep)
        for name, arr in stored.items():
            getattr(self, name)[:n] = arr[keep]
        self.size, self.ptr = n, n % self.capacity
