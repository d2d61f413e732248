"""Batch-Constrained deep Q-learning, continuous (Fujimoto et al., 2019), with the official defaults.

One page, in data-flow order: config, networks, losses, the update, acting. Official settings
(sfujim/BCQ ``continuous_BCQ``): a VAE (750-750, latent 2·|A|) models the dataset's actions; a
perturbation actor (400-300) shifts a decoded action by at most φ = 0.05; twin critics (400-300) learn
from a soft clipped double-Q target (λ = 0.75 on the min, 0.25 on the max) over 10 decoded next
actions; Adam 1e-3; γ 0.99, τ 0.005, batch 100; acting picks the best of 100 perturbed decodes.
Every trained network (VAE, actor, twin critic) is built of `MaskedLinear` layers, so pathways plug
in from outside; the targets follow their networks' masks.

With ``tasks`` > 0 the same losses train one set of networks over ``[tasks, batch, ...]`` (multi-task
offline: `TaskLinear` layers); the loss is then the mean over tasks of each task's loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..pathways.multitask import average_task_grads
from .common import Batch, MLPFactory, adam, mlp, mlp_factory, module_device, polyak
from .sac import TwinCritic


@dataclass
class BCQConfig:
    hidden: list[int] = field(default_factory=lambda: [400, 300])
    vae_hidden: list[int] = field(default_factory=lambda: [750, 750])
    lr: float = 1e-3
    batch_size: int = 100
    gamma: float = 0.99
    tau: float = 0.005
    phi: float = 0.05
    lmbda: float = 0.75
    next_actions: int = 10
    act_samples: int = 100


class VAE(nn.Module):
    """Conditional VAE of the dataset's actions: encoder (s, a) → z, decoder (s, z) → a."""

    pathway_members = ("encoder", "decoder")

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], make_mlp: MLPFactory = mlp) -> None:
        super().__init__()
        self.latent = 2 * act_dim
        self.encoder = make_mlp(obs_dim + act_dim, hidden, 2 * self.latent)
        self.decoder = make_mlp(obs_dim + self.latent, hidden, act_dim)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_std = self.encoder(torch.cat([obs, action], -1)).chunk(2, -1)
        std = log_std.clamp(-4, 15).exp()
        z = mean + std * torch.randn_like(std)
        return self.decode(obs, z), mean, std

    def decode(self, obs: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:      # the prior, clipped as in the official code
            z = torch.randn(*obs.shape[:-1], self.latent, device=obs.device).clamp(-0.5, 0.5)
        return torch.tanh(self.decoder(torch.cat([obs, z], -1)))


class Perturbation(nn.Module):
    """ξ(s, a): a + φ·tanh(f(s, a)), clipped to the action box [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], phi: float, make_mlp: MLPFactory = mlp) -> None:
        super().__init__()
        self.net, self.phi = make_mlp(obs_dim + act_dim, hidden, act_dim), phi

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (action + self.phi * torch.tanh(self.net(torch.cat([obs, action], -1)))).clamp(-1.0, 1.0)


class BCQ(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, cfg: BCQConfig, total_steps: int = 0, *, tasks: int = 0,
                 per_task_heads: bool = False) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim, self.tasks = cfg, obs_dim, act_dim, tasks
        make = mlp_factory(tasks, per_task_heads)
        self.vae = VAE(obs_dim, act_dim, cfg.vae_hidden, make)
        self.actor = Perturbation(obs_dim, act_dim, cfg.hidden, cfg.phi, make)
        self.actor_target = Perturbation(obs_dim, act_dim, cfg.hidden, cfg.phi, make)
        self.critic = TwinCritic(obs_dim, act_dim, cfg.hidden, make)
        self.critic_target = TwinCritic(obs_dim, act_dim, cfg.hidden, make)
        for target, source in ((self.actor_target, self.actor), (self.critic_target, self.critic)):
            target.load_state_dict(source.state_dict())
            target.requires_grad_(False)
        self.updates = 0

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "vae": self.vae}

    @property
    def tied(self) -> dict[str, list[nn.Module]]:
        return {"actor": [self.actor_target], "critic": [self.critic_target]}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: adam(net.parameters(), lr=self.cfg.lr) for name, net in self.networks.items()}

    def make_schedulers(self, opts) -> dict:
        return {}

    # ---- losses ---------------------------------------------------------------------------------

    def vae_loss(self, b: Batch) -> torch.Tensor:
        recon, mean, std = self.vae(b.obs, b.action)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        return F.mse_loss(recon, b.action) + 0.5 * kl

    def critic_loss(self, b: Batch) -> torch.Tensor:
        n = self.cfg.next_actions
        with torch.no_grad():
            nxt = b.next_obs.repeat_interleave(n, -2)                 # [..., B·n, obs]
            tq1, tq2 = self.critic_target(nxt, self.actor_target(nxt, self.vae.decode(nxt)))
            lm = self.cfg.lmbda
            q = lm * torch.min(tq1, tq2) + (1 - lm) * torch.max(tq1, tq2)
            q = q.unflatten(-2, (-1, n)).max(-2).values                # best of n per state: [..., B, 1]
            target = b.reward + b.not_done * self.cfg.gamma * q
        q1, q2 = self.critic(b.obs, b.action)
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def actor_loss(self, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            sampled = self.vae.decode(b.obs)
        return -self.critic.q1(torch.cat([b.obs, self.actor(b.obs, sampled)], -1)).mean()

    def losses(self):
        return {"actor": self.actor_loss, "critic": self.critic_loss, "vae": self.vae_loss}

    # ---- one update -------------------------------------------------------------------------------

    def update(self, b: Batch, opts, schedulers=None) -> dict[str, torch.Tensor]:
        self.updates += 1
        out = {}
        for name, loss_fn in (("vae", self.vae_loss), ("critic", self.critic_loss), ("actor", self.actor_loss)):
            loss = loss_fn(b)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            if self.tasks:
                average_task_grads(self.networks[name])
            opts[name].step()
            out[f"losses/{name}"] = loss.detach()
        polyak(self.critic_target, self.critic, self.cfg.tau)
        polyak(self.actor_target, self.actor, self.cfg.tau)
        return out

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The best (by Q1) of ``act_samples`` perturbed decodes of the state ``obs`` [obs_dim];
        multi-task: one per task for ``obs`` [tasks, obs_dim]."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=module_device(self)).unsqueeze(-2)
        x = x.repeat_interleave(self.cfg.act_samples, -2)                 # [..., S, obs]
        action = self.actor(x, self.vae.decode(x))
        q1 = self.critic.q1(torch.cat([x, action], -1))                  # [..., S, 1]
        best = q1.argmax(-2, keepdim=True).expand(*action.shape[:-2], 1, action.shape[-1])
        return action.gather(-2, best).squeeze(-2).cpu().numpy()
