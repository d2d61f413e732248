import numpy as np
import torch

from neuropath.algos.sac import SAC, SACConfig
from neuropath.data.replay import ReplayBuffer
from neuropath.pathways import DAPD, Pathway, WarmupFreeze, masked_layers, unmasked


def _agent():
    torch.manual_seed(0)
    sac = SAC(5, 2, SACConfig(hidden=[16, 16], batch_size=16))
    opts = sac.make_optimizers()
    buf = ReplayBuffer(5, 2, 500)
    rng = np.random.default_rng(0)
    for _ in range(200):
        buf.add(rng.normal(size=5), rng.uniform(-1, 1, 2), rng.normal(), rng.normal(size=5), rng.random() < 0.05)
    pws = {n: Pathway(net, DAPD(0.1), WarmupFreeze(), opts[n], tied=sac.tied.get(n, ()))
           for n, net in sac.networks.items()}
    losses = sac.losses()
    with unmasked(sac):
        for n, pw in pws.items():
            pw.init(lambda n=n: losses[n](buf.sample(16)))
    return sac, opts, buf


def test_actor_and_critic_masked_gradients_are_exactly_zero():
    sac, opts, buf = _agent()
    b = buf.sample(16)
    sac.critic_loss(b).backward()
    sac.actor_loss(b)[0].backward()
    for net in (sac.actor, sac.critic):
        for m in masked_layers(net).values():
            assert torch.all(m.weight.grad[~m.mask[0]] == 0)
            assert m.bias.grad is not None


def test_actor_loss_does_not_train_the_critic():
    sac, _, buf = _agent()
    sac.actor_loss(buf.sample(16))[0].backward()
    assert all(p.grad is None for p in sac.critic.parameters())


def test_target_critic_runs_the_critic_pathway_and_inactive_weights_stay_put():
    sac, opts, buf = _agent()
    stored = {n: m.weight.detach().clone() for n, m in masked_layers(sac.critic).items()}
    for _ in range(40):
        sac.update(buf.sample(16), opts)
    for (n, m), t in zip(masked_layers(sac.critic).items(), masked_layers(sac.critic_target).values()):
        assert torch.equal(m.mask, t.mask) and t.use_mask
        assert torch.equal(m.weight[~m.mask[0]], stored[n][~m.mask[0]])
    b = buf.sample(8)
    out = sac.critic_target(b.obs, b.action)
    with torch.no_grad():
        for t in masked_layers(sac.critic_target).values():
            t.weight[~t.mask[0]] = 1e6
    assert all(torch.equal(x, y) for x, y in zip(out, sac.critic_target(b.obs, b.action)))


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    sac = SAC(3, 2, SACConfig(hidden=[8]))
    obs = torch.randn(64, 3)
    torch.manual_seed(1)
    a, logp = sac.actor.sample(obs)
    torch.manual_seed(1)
    mu, log_std = sac.actor(obs)
    u = mu + torch.randn_like(mu) * log_std.exp()
    dist = torch.distributions.Normal(mu, log_std.exp())
    ref = (dist.log_prob(u) - torch.log(1 - torch.tanh(u).pow(2) + 1e-12)).sum(-1, keepdim=True)
    assert torch.allclose(a, torch.tanh(u))
    assert torch.allclose(logp, ref, atol=1e-3)


def test_nstep_soft_target_adds_intermediate_entropy_bonuses():
    """RLx2's soft n-step target: R + not_done·γ^m·(min Q' − α log π) − α Σ_k γ^k log π(s_{t+k})."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    sac = SAC(3, 1, SACConfig(hidden=[8, 8]))
    buf = ReplayBuffer(3, 1, 100)
    obs = np.zeros(3)
    for t in range(40):                                # episodes of 7 steps, last one truncated
        nxt = np.array([t + 1.0, 0.0, 0.0]) if t % 7 != 6 else np.array([-1.0, 0.0, 0.0])
        buf.add(obs, np.array([0.1]), 1.0, nxt, False)
        obs = nxt if t % 7 != 6 else np.array([t + 1.0, 0.0, 0.0])
    torch.manual_seed(1)
    b = buf.sample_nstep(32, 3, 0.9)
    assert (b.mid_weight > 0).any() and (b.mid_weight == 0).any()      # some samples cut by a boundary
    torch.manual_seed(2)
    loss = sac.critic_loss(b)
    torch.manual_seed(2)
    with torch.no_grad():
        a, logp = sac.actor.sample(b.next_obs)
        v = torch.min(*sac.critic_target(b.next_obs, a)) - sac.alpha * logp
        _, mid_logp = sac.actor.sample(b.mid_obs.flatten(0, 1))
        target = b.reward + b.not_done * b.discount * v \
            - sac.alpha * (b.mid_weight * mid_logp.view(32, 2)).sum(1, keepdim=True)
    q1, q2 = sac.critic(b.obs, b.action)
    assert torch.allclose(loss, F.mse_loss(q1, target) + F.mse_loss(q2, target))
