"""Multi-task SAC: one actor and one twin critic over all tasks, every pass batched over tasks.

Tensors are ``[tasks, batch, ...]``: each layer is a `TaskLinear`, so ten tasks cost one batched
matmul per layer, not a Python loop. The observation carries the task one-hot (Meta-World's
``use_one_hot``); each task has its own learned temperature (as the MT-SAC baselines). The total
loss is the sum of the tasks' mean losses, so task t's gradient is what single-task SAC would
give it; in warm-up that gradient reaches only task t's weight copies, after the merge the shared
layers average it over the tasks whose pathway holds each weight (`average_task_grads`).

``per_task_heads``: the multi-head variant (shared trunk, one output layer per task).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..pathways.multitask import average_task_grads, task_mlp
from .common import adam, polyak
from .sac import SACConfig, mean_and_log_std, tanh_gaussian_sample

class TaskBatch(NamedTuple):
    obs: torch.Tensor           # [T, B, obs]
    action: torch.Tensor        # [T, B, act]
    reward: torch.Tensor        # [T, B, 1]
    next_obs: torch.Tensor      # [T, B, obs]
    not_done: torch.Tensor      # [T, B, 1]


class TaskActor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], tasks: int, per_task_heads: bool) -> None:
        super().__init__()
        self.net = task_mlp(obs_dim, hidden, 2 * act_dim, tasks, per_task_head=per_task_heads)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mean_and_log_std(self.net(obs))

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised tanh-Gaussian action and its log-probability [T, B, 1]."""
        return tanh_gaussian_sample(*self(obs))


class TaskCritic(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], tasks: int, per_task_heads: bool) -> None:
        super().__init__()
        self.q1 = task_mlp(obs_dim + act_dim, hidden, 1, tasks, per_task_head=per_task_heads)
        self.q2 = task_mlp(obs_dim + act_dim, hidden, 1, tasks, per_task_head=per_task_heads)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x), self.q2(x)


class MTSAC(nn.Module):
    """Networks, per-task temperatures and the batched update of multi-task SAC."""

    def __init__(self, obs_dim: int, act_dim: int, tasks: int, cfg: SACConfig, *, per_task_heads: bool = False) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim, self.tasks = cfg, obs_dim, act_dim, tasks
        self.actor = TaskActor(obs_dim, act_dim, cfg.hidden, tasks, per_task_heads)
        self.critic = TaskCritic(obs_dim, act_dim, cfg.hidden, tasks, per_task_heads)
        self.critic_target = TaskCritic(obs_dim, act_dim, cfg.hidden, tasks, per_task_heads)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((tasks, 1, 1), math.log(cfg.init_temperature)))
        self.target_entropy = -float(act_dim)
        self.updates = 0

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.cfg.lr
        return {"actor": adam(self.actor.parameters(), lr=lr),
                "critic": adam(self.critic.parameters(), lr=lr),
                "alpha": torch.optim.Adam([self.log_alpha], lr=lr)}

    # ---- losses: sums over tasks of each task's mean loss ---------------------------------------

    def critic_loss(self, b: TaskBatch) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_logp = self.actor.sample(b.next_obs)
            tq1, tq2 = self.critic_target(b.next_obs, next_action)
            v = torch.min(tq1, tq2) - self.alpha.detach() * next_logp
            target = b.reward + b.not_done * self.cfg.gamma * v
        q1, q2 = self.critic(b.obs, b.action)
        return ((q1 - target).pow(2).mean((1, 2)) + (q2 - target).pow(2).mean((1, 2))).sum()

    def actor_loss(self, b: TaskBatch, *, critic_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        action, logp = self.actor.sample(b.obs)
        params = list(self.critic.parameters())
        if not critic_grad:
            for p in params:
                p.requires_grad_(False)
        try:
            q1, q2 = self.critic(b.obs, action)
        finally:
            for p in params:
                p.requires_grad_(True)
        return (self.alpha.detach() * logp - torch.min(q1, q2)).mean((1, 2)).sum(), logp

    def losses(self):
        """DAPD's scoring losses, keyed like `networks` (as single-task SAC's)."""
        return {"actor": lambda b: self.actor_loss(b)[0],
                "critic": lambda b: self.critic_loss(b) + self.actor_loss(b, critic_grad=True)[0]}

    # ---- one update over all tasks --------------------------------------------------------------

    def update(self, b: TaskBatch, opts: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        self.updates += 1
        critic_loss = self.critic_loss(b)
        opts["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        average_task_grads(self.critic)
        opts["critic"].step()
        out = {"losses/critic": critic_loss.detach()}
        if self.updates % cfg.actor_every == 0:
            actor_loss, logp = self.actor_loss(b)
            opts["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
            average_task_grads(self.actor)
            opts["actor"].step()
            if cfg.learn_temperature:
                alpha_loss = (self.alpha * (-logp.detach() - self.target_entropy)).mean((1, 2)).sum()
                opts["alpha"].zero_grad(set_to_none=True)
                alpha_loss.backward()
                opts["alpha"].step()
            out["losses/actor"] = actor_loss.detach()
        if self.updates % cfg.target_every == 0:
            polyak(self.critic_target, self.critic, cfg.tau)
        return out

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions [T, A] in [-1, 1] for one observation per task [T, obs]."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.log_alpha.device).unsqueeze(1)
        a = torch.tanh(self.actor(x)[0]) if deterministic else self.actor.sample(x)[0]
        return a[:, 0].cpu().numpy()
