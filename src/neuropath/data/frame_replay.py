"""Replay of Atari transitions that stores each 84×84 frame once.

A stacked observation is 4 frames (28 KB); storing obs and next obs whole would make a 1M-transition buffer
56 GB. Here every step appends only the newest frame to a ring of frames, and a stack is rebuilt from the
``stack`` frames ending at its position — frames from before the episode's first observation are replaced
by that first frame, as Gymnasium's `FrameStackObservation` pads a reset. Memory: ``capacity`` × 1.1
frames of 7,056 bytes plus 17 bytes per transition, ≈ 7.8 GB for 1M transitions (`nbytes`).

Each transition keeps the stream position of its observation's newest frame; the next observation's
newest frame is the one after it. An episode start appends its reset frame first (one extra frame per
episode, hence the 10% margin); a transition whose oldest frame has been overwritten is never sampled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..algos.dqn import DQNBatch

MARGIN = 0.1


class FrameReplay:
    def __init__(self, obs_shape: tuple[int, int, int], capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.stack, *self.frame_shape = obs_shape
        self.capacity = int(capacity)
        self.frame_capacity = int(capacity * (1 + MARGIN)) + 2 * self.stack
        self.frames = np.zeros((self.frame_capacity, *self.frame_shape), np.uint8)
        self.start = np.zeros(self.frame_capacity, np.int64)      # stream position of the frame's episode start
        self.frames_total = 0                                       # frames ever appended
        self.pos = np.zeros(self.capacity, np.int64)               # stream position of obs's newest frame
        self.action = np.zeros(self.capacity, np.int64)
        self.reward = np.zeros(self.capacity, np.float32)
        self.not_done = np.zeros(self.capacity, np.float32)
        self.ptr = self.size = 0
        self._episode_start = -1

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.frames, self.start, self.pos, self.action, self.reward, self.not_done))

    def _append(self, frame: np.ndarray) -> int:
        s = self.frames_total
        self.frames[s % self.frame_capacity] = frame
        self.start[s % self.frame_capacity] = self._episode_start
        self.frames_total += 1
        return s

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminal: bool,
            first: bool = False) -> None:
        """Store a transition; ``first``: ``obs`` is an episode's reset observation."""
        if first or self._episode_start < 0:
            self._episode_start = self.frames_total
            self._append(obs[-1])
        s = self.frames_total - 1                                   # obs's newest frame
        self._append(next_obs[-1])
        i = self.ptr
        self.pos[i], self.action[i], self.reward[i] = s, action, reward
        self.not_done[i] = 0.0 if terminal else 1.0
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def stacked(self, s: np.ndarray) -> np.ndarray:
        """The observations whose newest frames are at stream positions ``s``: [n, stack, H, W]."""
        episode = self.start[s % self.frame_capacity]
        offsets = np.arange(-self.stack + 1, 1)
        idx = np.maximum(s[:, None] + offsets[None, :], episode[:, None])
        return self.frames[idx % self.frame_capacity]

    def _valid(self, idx: np.ndarray) -> np.ndarray:
        s = self.pos[idx]
        oldest = np.maximum(s - self.stack + 1, self.start[s % self.frame_capacity])
        return oldest >= self.frames_total - self.frame_capacity

    def _batch(self, idx: np.ndarray) -> DQNBatch:
        s = self.pos[idx]
        return DQNBatch(torch.from_numpy(self.stacked(s)), torch.from_numpy(self.action[idx]),
                        torch.from_numpy(self.reward[idx]), torch.from_numpy(self.stacked(s + 1)),
                        torch.from_numpy(self.not_done[idx]))

    def _draw(self, batch_size: int, n: int) -> np.ndarray:
        offsets = torch.randint(0, n, (batch_size,)).numpy()
        idx = (self.ptr - n + offsets) % self.capacity
        bad = ~self._valid(idx)
        while bad.any():                      # only the very oldest transitions can have lost a frame
            idx[bad] = (self.ptr - n + torch.randint(0, n, (int(bad.sum()),)).numpy()) % self.capacity
            bad = ~self._valid(idx)
        return idx

    def sample(self, batch_size: int) -> DQNBatch:
        return self._batch(self._draw(batch_size, self.size))

    def sample_recent(self, batch_size: int, window: int) -> DQNBatch:
        return self._batch(self._draw(batch_size, min(window, self.size)))

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, frames=self.frames, start=self.start, pos=self.pos, action=self.action, reward=self.reward,
                     not_done=self.not_done, meta=np.array([self.ptr, self.size, self.frames_total, self._episode_start]))

    def load(self, path: Path) -> None:
        with np.load(path) as f:
            if len(f["action"]) != self.capacity:
                raise ValueError(f"saved frame replay holds {len(f['action'])} transitions, this run {self.capacity}")
            self.frames[:], self.start[:], self.pos[:] = f["frames"], f["start"], f["pos"]
            self.action[:], self.reward[:], self.not_done[:] = f["action"], f["reward"], f["not_done"]
            self.ptr, self.size, self.frames_total, self._episode_start = (int(x) for x in f["meta"])
