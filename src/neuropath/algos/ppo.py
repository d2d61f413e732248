"""Proximal Policy Optimization (Schulman et al., 2017) as MuJoCo users know it (CleanRL / SB3 defaults).

One page, in data-flow order: config, networks, losses (functions of a rollout minibatch: the same
losses train the networks and score them for pathways), the update, acting. Defaults: separate 64×64
tanh actor and value networks with orthogonal initialisation, a state-independent log-std (Gaussian
actions) or a categorical head (discrete actions), 2048-step rollouts, 10 epochs of 32 minibatches,
Adam 3e-4 (ε 1e-5) annealed linearly to 0, GAE λ 0.95, γ 0.99, clip 0.2 (also on the value, as CleanRL;
SB3 leaves it unclipped: ``clip_value``), value coefficient 0.5, entropy coefficient 0, gradient-norm clip
0.5 over both networks, advantages normalised per minibatch. Observation and reward normalisation live in
the loop (training/loops/ppo.py).
Layers are `MaskedLinear`, so pathways plug in from outside as for SAC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from .common import adam, mlp, module_device

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class PPOConfig:
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    lr: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    clip_value: bool = True     # CleanRL; SB3 leaves the value unclipped
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5


class RolloutBatch(NamedTuple):
    obs: torch.Tensor           # [B, obs]
    action: torch.Tensor        # [B, act] (continuous) or [B] (discrete)
    logprob: torch.Tensor       # [B] under the policy that acted
    advantage: torch.Tensor     # [B]
    ret: torch.Tensor           # [B] GAE returns (value targets)
    value: torch.Tensor         # [B] values when acting (for the clipped value loss)


class PPOActor(nn.Module):
    """π(a|s): a Gaussian with a state-independent log-std, or a categorical over ``n_actions``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], discrete: bool) -> None:
        super().__init__()
        self.discrete = discrete
        self.net = mlp(obs_dim, hidden, act_dim, init="orthogonal", activation=nn.Tanh, out_gain=0.01)
        self.log_std = None if discrete else nn.Parameter(torch.zeros(act_dim))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        out = self.net(obs)          # argument validation off: it costs more than the network here
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        return Normal(out, self.log_std.exp().expand_as(out), validate_args=False)

    def log_prob_entropy(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.dist(obs)
        if self.discrete:
            return d.log_prob(action), d.entropy()
        return d.log_prob(action).sum(-1), d.entropy().sum(-1)


class PPO(nn.Module):
    """Actor and value network of one PPO agent; ``networks`` are the maskable ones."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: PPOConfig, *, discrete: bool = False) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim, self.discrete = cfg, obs_dim, act_dim, discrete
        self.actor = PPOActor(obs_dim, act_dim, cfg.hidden, discrete)
        self.value = mlp(obs_dim, cfg.hidden, 1, init="orthogonal", activation=nn.Tanh, out_gain=1.0)
        self.updates = 0

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "value": self.value}

    @property
    def tied(self) -> dict[str, list[nn.Module]]:
        return {}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per network (Adam is per parameter, so this equals CleanRL's one optimizer)."""
        return {n: adam(net.parameters(), lr=self.cfg.lr, eps=1e-5) for n, net in self.networks.items()}

    # ---- losses ---------------------------------------------------------------------------------

    def policy_loss(self, b: RolloutBatch) -> torch.Tensor:
        """Clipped surrogate (advantages normalised over the minibatch) minus the entropy bonus."""
        logprob, entropy = self.actor.log_prob_entropy(b.obs, b.action)
        ratio = (logprob - b.logprob).exp()
        adv = (b.advantage - b.advantage.mean()) / (b.advantage.std() + 1e-8) if len(b.advantage) > 1 else b.advantage
        clip = self.cfg.clip
        surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
        return surrogate - self.cfg.ent_coef * entropy.mean()

    def value_loss(self, b: RolloutBatch) -> torch.Tensor:
        """0.5 · max((V − R)², (V_clipped − R)²), V clipped to ±clip around the acting value; 0.5 · (V − R)²
        without ``clip_value``."""
        v = self.value(b.obs).squeeze(-1)
        if not self.cfg.clip_value:
            return 0.5 * (v - b.ret).pow(2).mean()
        clipped = b.value + (v - b.value).clamp(-self.cfg.clip, self.cfg.clip)
        return 0.5 * torch.max((v - b.ret).pow(2), (clipped - b.ret).pow(2)).mean()

    def losses(self):
        """Each network's own training loss, keyed like `networks` (they also score pathways)."""
        return {"actor": self.policy_loss, "value": self.value_loss}

    # ---- one minibatch update -------------------------------------------------------------------

    def update(self, b: RolloutBatch, opts: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        self.updates += 1
        pg, vl = self.policy_loss(b), self.value_loss(b)
        loss = pg + self.cfg.vf_coef * vl
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), self.cfg.max_grad_norm)
        for o in opts.values():
            o.step()
        return {"losses/policy": pg.detach(), "losses/value": vl.detach()}

    def set_lr(self, opts: dict[str, torch.optim.Optimizer], fraction_left: float) -> float:
        """Linear annealing: lr · (1 − done fraction), as CleanRL (per rollout)."""
        lr = self.cfg.lr * (fraction_left if self.cfg.anneal_lr else 1.0)
        for o in opts.values():
            for g in o.param_groups:
                g["lr"] = lr
        return lr

    # ---- acting ---------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled actions, their log-probabilities and the values of a batch of observations (the
        Gaussian written out: this runs at every environment step)."""
        if self.discrete:
            d = self.actor.dist(obs)
            action = d.sample()
            logprob = d.log_prob(action)
        else:
            mean, log_std = self.actor.net(obs), self.actor.log_std
            eps = torch.randn_like(mean)
            action = mean + eps * log_std.exp()
            logprob = (-0.5 * eps.pow(2) - log_std - _HALF_LOG_2PI).sum(-1)
        return action, logprob, self.value(obs).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """One action for a (normalised) observation: the mean / most likely action, or a sample."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=module_device(self)).unsqueeze(0)
        d = self.actor.dist(x)
        if deterministic:
            a = d.probs.argmax(-1) if self.discrete else d.mean
        else:
            a = d.sample()
        return a[0].cpu().numpy()


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
        last_done: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout ``[T, N]``; ``dones[t]`` marks that the
    observation at t starts a new episode (CleanRL's convention). Returns (advantages, returns)."""
    steps = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        if t == steps - 1:
            not_done, next_value = 1.0 - last_done, last_value
        else:
            not_done, next_value = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        last = delta + gamma * lam * not_done * last
        adv[t] = last
    return adv, adv + values
