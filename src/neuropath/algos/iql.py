"""Implicit Q-Learning (Kostrikov et al., 2021) with the official MuJoCo defaults.

One page, in data-flow order: config, networks, losses (functions of a batch: the same losses train
the networks and score them for pathways), the update, acting. Official settings
(ikostrikov/implicit_q_learning, ``configs/mujoco_config.py``): 256×256 networks, Adam 3e-4 for all,
expectile 0.7, inverse temperature β 3.0 with exp-advantages clipped at 100, γ 0.99, τ 0.005, batch 256,
cosine decay of the actor's learning rate over the run, a tanh-squashed mean with a state-independent
log-std. Layers are `MaskedLinear`, so pathways plug in from outside as for SAC.

With ``tasks`` > 0 the same losses train one network over ``[tasks, batch, ...]`` (multi-task offline:
`TaskLinear` layers, a log-std per task); the loss is then the mean over tasks of each task's loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .common import Batch, MLPFactory, adam, mlp, mlp_factory, module_device, polyak
from ..pathways.multitask import average_task_grads
from .sac import TwinCritic

EXP_ADV_MAX = 100.0
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass
class IQLConfig:
    """IQL hyperparameters (the official MuJoCo ones)."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    lr: float = 3e-4
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    beta: float = 3.0


class GaussianActor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], make_mlp: MLPFactory = mlp,
                 tasks: int = 0) -> None:
        super().__init__()
        self.net = make_mlp(obs_dim, hidden, act_dim)
        self.log_std = nn.Parameter(torch.zeros((tasks, 1, act_dim) if tasks > 0 else (act_dim,)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(self.net(obs)), self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        mean, log_std = self(obs)
        z = (action - mean) / log_std.exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1, keepdim=True)


class IQL(nn.Module):
    """Actor, twin Q (with a target) and V of one IQL agent; ``networks`` are the maskable ones."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: IQLConfig, total_steps: int, *, tasks: int = 0,
                 per_task_heads: bool = False) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim, self.total_steps = cfg, obs_dim, act_dim, total_steps
        self.tasks = tasks
        make = mlp_factory(tasks, per_task_heads)
        self.actor = GaussianActor(obs_dim, act_dim, cfg.hidden, make, tasks)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden, make)
        self.critic_target = TwinCritic(obs_dim, act_dim, cfg.hidden, make)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.value = make(obs_dim, cfg.hidden, 1)
        self.updates = 0

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "value": self.value}

    @property
    def tied(self) -> dict[str, list[nn.Module]]:
        return {"critic": [self.critic_target]}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.cfg.lr
        return {name: adam(net.parameters(), lr=lr) for name, net in self.networks.items()}

    def make_schedulers(self, opts) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """The actor's learning rate decays along a cosine over the run (official code)."""
        return {"actor": torch.optim.lr_scheduler.CosineAnnealingLR(opts["actor"], max(self.total_steps, 1))}

    # ---- losses ---------------------------------------------------------------------------------

    def value_loss(self, b: Batch) -> torch.Tensor:
        """Expectile regression of V(s) towards min target Q(s, a) on dataset actions."""
        with torch.no_grad():
            q = torch.min(*self.critic_target(b.obs, b.action))
        diff = q - self.value(b.obs)
        weight = torch.where(diff > 0, self.cfg.expectile, 1.0 - self.cfg.expectile)
        return (weight * diff.pow(2)).mean()

    def critic_loss(self, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            target = b.reward + b.not_done * self.cfg.gamma * self.value(b.next_obs)
        q1, q2 = self.critic(b.obs, b.action)
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def actor_loss(self, b: Batch) -> torch.Tensor:
        """Advantage-weighted regression: −exp(β·(Q − V)) · log π(a|s), weights clipped at 100."""
        with torch.no_grad():
            adv = torch.min(*self.critic_target(b.obs, b.action)) - self.value(b.obs)
            weight = torch.exp(self.cfg.beta * adv).clamp(max=EXP_ADV_MAX)
        return -(weight * self.actor.log_prob(b.obs, b.action)).mean()

    def bc_loss(self, b: Batch) -> torch.Tensor:
        """The actor loss with every advantage weight 1: −log π(a|s) of the dataset actions (what
        ``--npf-actor-loss bc`` scores the actor's pathway with)."""
        return -self.actor.log_prob(b.obs, b.action).mean()

    def losses(self):
        """Each network's own training loss, keyed like `networks` (they also score pathways)."""
        return {"actor": self.actor_loss, "critic": self.critic_loss, "value": self.value_loss}

    # ---- one update -------------------------------------------------------------------------------

    def update(self, b: Batch, opts, schedulers) -> dict[str, torch.Tensor]:
        self.updates += 1
        out = {}
        for name, loss_fn in (("value", self.value_loss), ("critic", self.critic_loss), ("actor", self.actor_loss)):
            loss = loss_fn(b)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            if self.tasks:
                average_task_grads(self.networks[name])
            opts[name].step()
            out[f"losses/{name}"] = loss.detach()
        schedulers["actor"].step()
        polyak(self.critic_target, self.critic, self.cfg.tau)
        return out

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """One action for ``obs`` [obs_dim]; multi-task: one per task for ``obs`` [tasks, obs_dim]."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=module_device(self)).unsqueeze(-2)
        mean, log_std = self.actor(x)
        a = mean if deterministic else (mean + torch.randn_like(mean) * log_std.exp()).clamp(-1, 1)
        return a.squeeze(-2).cpu().numpy()
