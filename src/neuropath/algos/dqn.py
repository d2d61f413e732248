"""DQN (Mnih et al., 2015) with the Nature network, the small MinAtar network (Young & Tian, 2019), and an
MLP for vector observations (CleanRL's ``dqn.py``: CartPole, Acrobot, MountainCar).

One page, in data-flow order: config, networks, the TD loss (a function of a batch: the same loss trains
the Q-network and scores it for pathways), the update, acting. Defaults are CleanRL's ``dqn_atari``
with Adam (lr 1e-4, batch 32, γ 0.99, a hard target copy every 1000 updates) and the Huber loss of
the Nature paper. The fully connected layers are `MaskedLinear` (the paper's "95%-sparse MLP layers");
the convolutions are plain unless ``mask_conv``, then `MaskedConv2d`, so pathways plug in from outside.
Observations are ``[C, H, W]``: Atari's 4 stacked 84×84 uint8 frames (scaled by 1/255 here) or
MinAtar's 10×10 channels; or ``[obs_dim]`` floats for the MLP (``torso="mlp"``, all of its layers masked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..pathways import MaskedConv2d, MaskedLinear
from .common import adam, module_device


@dataclass
class DQNConfig:
    lr: float = 1e-4
    gamma: float = 0.99
    batch_size: int = 32
    target_every: int = 1000      # updates between hard copies into the target network
    huber: bool = True


class DQNBatch(NamedTuple):
    obs: torch.Tensor             # [B, C, H, W] (uint8 for Atari) or [B, obs_dim]
    action: torch.Tensor          # [B] long
    reward: torch.Tensor          # [B]
    next_obs: torch.Tensor        # like obs
    not_done: torch.Tensor        # [B]; 0 only on a true termination

    def to(self, device: torch.device) -> "DQNBatch":
        """The batch on ``device`` (frames travel as uint8 and become floats there: 4× less to copy)."""
        return DQNBatch(*(t.to(device, non_blocking=True) for t in self))


def _conv(mask: bool, *args, **kwargs) -> nn.Module:
    return MaskedConv2d(*args, **kwargs) if mask else nn.Conv2d(*args, **kwargs)


TORSOS = ("nature", "minatar", "mlp")
MLP_HIDDEN = (120, 84)
"""CleanRL's ``dqn.py`` Q-network for vector observations"""


class QNetwork(nn.Module):
    """``torso="nature"``: 3 convolutions (32 8×8/4, 64 4×4/2, 64 3×3/1) and a 512-unit layer;
    ``"minatar"``: one convolution (16 3×3/1) and a 128-unit layer; ``"mlp"``: no convolution, ``hidden``
    ReLU layers (default `MLP_HIDDEN`) on ``[obs_dim]`` observations. Output: one Q-value per action."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, torso: str = "nature",
                 mask_conv: bool = False, hidden: tuple[int, ...] = MLP_HIDDEN) -> None:
        super().__init__()
        self.scale = 1.0 / 255.0 if torso == "nature" else 1.0
        if torso == "mlp":
            if len(obs_shape) != 1:
                raise ValueError(f"the mlp torso takes [obs_dim] observations, got shape {tuple(obs_shape)}")
            self.conv = nn.Sequential(nn.Flatten())       # no convolution: export reads an empty torso
            widths = [int(obs_shape[0]), *hidden]
            layers: list[nn.Module] = []
            for a, b in zip(widths[:-1], widths[1:]):
                layers += [MaskedLinear(a, b), nn.ReLU()]
            self.head = nn.Sequential(*layers, MaskedLinear(widths[-1], n_actions))
            return
        if len(obs_shape) != 3:
            raise ValueError(f"the {torso} torso takes [C, H, W] observations, got shape {tuple(obs_shape)}")
        c, h, w = obs_shape
        if torso == "nature":
            self.conv = nn.Sequential(_conv(mask_conv, c, 32, 8, stride=4), nn.ReLU(),
                                      _conv(mask_conv, 32, 64, 4, stride=2), nn.ReLU(),
                                      _conv(mask_conv, 64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
            hidden = 512
        elif torso == "minatar":
            self.conv = nn.Sequential(_conv(mask_conv, c, 16, 3, stride=1), nn.ReLU(), nn.Flatten())
            hidden = 128
        else:
            raise ValueError(f"unknown torso {torso!r}; one of {', '.join(TORSOS)}")
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(MaskedLinear(flat, hidden), nn.ReLU(), MaskedLinear(hidden, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(obs.float() * self.scale))


class DQN(nn.Module):
    """Q-network and its target; ``networks`` are the maskable ones (the target follows the masks)."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, cfg: DQNConfig, *, torso: str = "nature",
                 mask_conv: bool = False, hidden: tuple[int, ...] = MLP_HIDDEN) -> None:
        super().__init__()
        self.cfg, self.obs_shape, self.n_actions = cfg, tuple(obs_shape), n_actions
        self.q = QNetwork(obs_shape, n_actions, torso, mask_conv, hidden)
        self.q_target = QNetwork(obs_shape, n_actions, torso, mask_conv, hidden)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.updates = 0

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"q": self.q}

    @property
    def tied(self) -> dict[str, list[nn.Module]]:
        return {"q": [self.q_target]}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"q": adam(self.q.parameters(), lr=self.cfg.lr)}

    # ---- the loss ---------------------------------------------------------------------------------

    def td_loss(self, b: DQNBatch) -> torch.Tensor:
        """Huber (or squared) error of Q(s, a) against r + γ·max_a' Q_target(s', a') (not after a termination)."""
        with torch.no_grad():
            target = b.reward + self.cfg.gamma * b.not_done * self.q_target(b.next_obs).max(1).values
        q = self.q(b.obs).gather(1, b.action.long().unsqueeze(1)).squeeze(1)
        return F.smooth_l1_loss(q, target) if self.cfg.huber else F.mse_loss(q, target)

    def losses(self):
        return {"q": self.td_loss}

    # ---- one update ---------------------------------------------------------------------------------

    def update(self, b: DQNBatch, opts: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        self.updates += 1
        loss = self.td_loss(b)
        opts["q"].zero_grad(set_to_none=True)
        loss.backward()
        opts["q"].step()
        if self.updates % self.cfg.target_every == 0:
            self.sync_target()
        return {"losses/td": loss.detach()}

    @torch.no_grad()
    def sync_target(self) -> None:
        """Hard copy of weights and masks into the target network."""
        self.q_target.load_state_dict(self.q.state_dict())

    # ---- acting ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, obs: np.ndarray, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> int:
        """ε-greedy: a uniform action with probability ε, else the greedy one."""
        if epsilon > 0:
            rng = rng if rng is not None else np.random.default_rng()
            if rng.random() < epsilon:
                return int(rng.integers(self.n_actions))
        return int(self.q(torch.as_tensor(obs, device=module_device(self.q)).unsqueeze(0)).argmax(1))


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """ε decays linearly from ``start`` to ``end`` over ``duration`` steps, then stays (Nature DQN)."""
    if duration <= 0:
        return end
    return max(end, start + (end - start) * step / duration)
