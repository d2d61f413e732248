"""Soft Actor-Critic, as in the DAPD authors' code (denisyarats/pytorch_sac lineage).

One page, in data-flow order: config, networks, losses, the update, acting. The losses are
functions of a batch, so the same functions that train the networks also score them for
pathway discovery (`losses`). The algorithm holds `MaskedLinear` layers and nothing else
of pathways: whether they are dense or sparse is decided outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .common import Batch, MLPFactory, adam, mlp, polyak

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class SACConfig:
    """SAC hyperparameters; defaults are those of the DAPD authors' MuJoCo runs."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """hidden layer widths of the actor and of each Q network"""
    lr: float = 1e-3
    """Adam learning rate of actor, critic and temperature"""
    batch_size: int = 256
    """minibatch size of every update"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.005
    """Polyak coefficient of the target critic"""
    target_every: int = 2
    """update the target critic every this many updates"""
    actor_every: int = 1
    """update actor and temperature every this many updates"""
    init_temperature: float = 0.1
    """initial entropy temperature alpha (learned)"""
    learn_temperature: bool = True
    """learn alpha towards the target entropy -|A|"""


def mean_and_log_std(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split an actor head into the mean and a log-std squashed into [LOG_STD_MIN, LOG_STD_MAX]."""
    mu, log_std = head.chunk(2, dim=-1)
    return mu, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)


def tanh_gaussian_sample(mu: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised action in [-1, 1] and its log-probability [..., 1] (closed form: Gaussian
    log-density minus log|d tanh/du| = 2(log 2 - u - softplus(-2u)))."""
    eps = torch.randn_like(mu)
    u = mu + eps * log_std.exp()
    log_prob = (-0.5 * eps.pow(2) - log_std - _HALF_LOG_2PI
                - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1, keepdim=True)
    return torch.tanh(u), log_prob


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy; one head outputs mean and log-std."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * act_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mean_and_log_std(self.net(obs))

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tanh_gaussian_sample(*self(obs))


class TwinCritic(nn.Module):
    """Two Q networks; as one masked module their weights share one pathway ranking (``--scope member``
    ranks each Q network alone)."""

    pathway_members = ("q1", "q2")

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], make_mlp: MLPFactory = mlp) -> None:
        super().__init__()
        self.q1 = make_mlp(obs_dim + act_dim, hidden, 1)
        self.q2 = make_mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x), self.q2(x)


class SAC(nn.Module):
    """Networks and temperature of one SAC agent. ``networks`` names the maskable ones."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.actor = Actor(obs_dim, act_dim, cfg.hidden)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden)
        self.critic_target = TwinCritic(obs_dim, act_dim, cfg.hidden)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self._critic_params = list(self.critic.parameters())
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_temperature)))
        self.target_entropy = -float(act_dim)
        self.updates = 0
        # optional fast path for one observation, ``(obs, deterministic) -> action | None`` (None: torch's
        # path); set from outside where the actor runs on the sparse kernels (`engine.sparse_act`)
        self.act_executor: Callable[[np.ndarray, bool], np.ndarray | None] | None = None

    @property
    def networks(self) -> dict[str, nn.Module]:
        """The networks that carry pathways; the target critic follows the critic's."""
        return {"actor": self.actor, "critic": self.critic}

    @property
    def tied(self) -> dict[str, list[nn.Module]]:
        return {"critic": [self.critic_target]}

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.cfg.lr
        return {"actor": adam(self.actor.parameters(), lr=lr),
                "critic": adam(self.critic.parameters(), lr=lr),
                "alpha": torch.optim.Adam([self.log_alpha], lr=lr)}

    # ---- losses: functions of a batch; the same ones train and score -------------------

    def _alpha(self, temperature: float | None) -> torch.Tensor:
        """The learned α, or a fixed ``temperature`` (scoring as the authors' rebuilt agent does)."""
        if temperature is None:
            return self.alpha.detach()
        return torch.tensor(temperature, dtype=self.log_alpha.dtype, device=self.log_alpha.device)

    def critic_loss(self, b: Batch, temperature: float | None = None) -> torch.Tensor:
        with torch.no_grad():
            alpha = self._alpha(temperature)
            next_action, next_logp = self.actor.sample(b.next_obs)
            tq1, tq2 = self.critic_target(b.next_obs, next_action)
            v = torch.min(tq1, tq2) - alpha * next_logp
            if b.discount is None:
                target = b.reward + b.not_done * self.cfg.gamma * v
            else:                                  # n-step (RLx2): soft bonuses on the way
                target = b.reward + b.not_done * b.discount * v
                if b.mid_obs is not None and b.mid_obs.shape[1] > 0:
                    _, mid_logp = self.actor.sample(b.mid_obs.flatten(0, 1))
                    bonus = (b.mid_weight * mid_logp.view_as(b.mid_weight)).sum(1, keepdim=True)
                    target = target - alpha * bonus
        q1, q2 = self.critic(b.obs, b.action)
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def actor_loss(self, b: Batch, *, critic_grad: bool = False,
                   temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy loss E[α log π − min Q]; returns (loss, log π). The critic's weights get no
        gradient unless ``critic_grad`` (scoring the critic with the actor loss, as the authors);
        α is the learned one unless ``temperature`` is given."""
        action, logp = self.actor.sample(b.obs)
        if critic_grad:
            q1, q2 = self.critic(b.obs, action)
        else:
            params = self._critic_params
            for p in params:                         # gradient flows to the action only
                p.requires_grad_(False)
            try:
                q1, q2 = self.critic(b.obs, action)
            finally:
                for p in params:
                    p.requires_grad_(True)
        return (self._alpha(temperature) * logp - torch.min(q1, q2)).mean(), logp

    def losses(self, *, training: bool = False,
               temperature: float | None = None) -> dict[str, Callable[[Batch], torch.Tensor]]:
        """Scoring losses keyed like `networks`. DAPD's (default): the critic is scored with
        its TD loss plus the actor loss that flows through it, the actor with its policy
        loss, both at the current temperature, or at ``temperature`` (the authors score at the
        initial α). ``training=True``: each network's own training loss (RigL/RLx2 grow on the
        gradient of the loss being minimised)."""
        if training:
            return {"actor": lambda b: self.actor_loss(b)[0], "critic": self.critic_loss}
        t = temperature
        return {"actor": lambda b: self.actor_loss(b, temperature=t)[0],
                "critic": lambda b: self.critic_loss(b, t) + self.actor_loss(b, critic_grad=True, temperature=t)[0]}

    # ---- one gradient update -----------------------------------------------------------

    def update(self, b: Batch, opts: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """One SAC update. Returns detached tensors: calling ``.item()`` on every update
        would synchronise and cost ~10%; the caller reads them only when it logs."""
        cfg = self.cfg
        self.updates += 1
        critic_loss = self.critic_loss(b)
        opts["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        opts["critic"].step()
        out = {"losses/critic": critic_loss.detach()}

        if self.updates % cfg.actor_every == 0:
            actor_loss, logp = self.actor_loss(b)
            opts["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
            opts["actor"].step()
            out["losses/actor"] = actor_loss.detach()
            if cfg.learn_temperature:
                alpha_loss = (self.alpha * (-logp.detach() - self.target_entropy)).mean()
                opts["alpha"].zero_grad(set_to_none=True)
                alpha_loss.backward()
                opts["alpha"].step()
            out["losses/alpha"] = self.alpha.detach()
            out["charts/entropy"] = -logp.detach().mean()

        if self.updates % cfg.target_every == 0:
            polyak(self.critic_target, self.critic, cfg.tau)
        return out

    # ---- acting -------------------------------------------------------------------------

    @torch.no_grad()
    def act_with_mean(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A sampled action and the policy's mean action tanh(μ) for one observation, from one
        forward pass (RLx2 stores the mean to measure how far its data is from the policy)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.log_alpha.device).unsqueeze(0)
        mu, log_std = self.actor(x)
        a = torch.tanh(mu + torch.randn_like(mu) * log_std.exp())
        return a[0].cpu().numpy(), torch.tanh(mu)[0].cpu().numpy()

    @torch.no_grad()
    def policy_distance(self, obs: torch.Tensor, mean_action: torch.Tensor) -> float:
        """RLx2's D: half the mean squared distance between the current policy's mean action
        and the stored one, over samples and action dimensions."""
        return 0.5 * float(F.mse_loss(torch.tanh(self.actor(obs)[0]), mean_action))

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action(s) in [-1, 1] for one observation or a batch of them."""
        if self.act_executor is not None:            # it declines batches and what it cannot run
            a = self.act_executor(obs, deterministic)
            if a is not None:
                return a
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.log_alpha.device)
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        if deterministic:
            a = torch.tanh(self.actor(x)[0])
        else:
            a = self.actor.sample(x)[0]
        a = a.cpu().numpy()
        return a[0] if single else a
