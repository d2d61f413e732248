import torch
from torch import nn

from neuropath.pathways import (DAPD, MaskedLinear, Pathway, RandomStatic, WarmupFreeze, density,
                                masked_layers)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(MaskedLinear(6, 16), nn.ReLU(), MaskedLinear(16, 2))


def _loss(net, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 6, generator=g), torch.randn(32, 2, generator=g)
    return lambda: (net(x) - y).pow(2).mean()


def test_masked_weights_keep_their_values_through_adam_and_mask_changes():
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    pw = Pathway(net, DAPD(0.2, moving_average=1), WarmupFreeze(every=1), opt)
    pw.init(_loss(net, 0))
    for step in range(1, 60):
        before = {n: (m.weight.detach().clone(), m.mask[0].clone()) for n, m in masked_layers(net).items()}
        opt.zero_grad()
        _loss(net, step)().backward()
        opt.step()
        for n, m in masked_layers(net).items():
            w0, mask = before[n]
            assert torch.equal(m.weight[~mask], w0[~mask]), f"inactive weights moved at step {step}"
        if step % 5 == 0:
            pw.maybe_update(step, _loss(net, 1000 + step))
    assert abs(density(net) - 0.2) < 0.01


def test_exact_density_and_tied_network_follows():
    net, target = _net(0), _net(1)
    pw = Pathway(net, DAPD(0.1), WarmupFreeze(), tied=[target])
    res = pw.init(_loss(net, 0))
    total = sum(m.weight.numel() for m in masked_layers(net).values())
    assert sum(int(m.mask.sum()) for m in masked_layers(net).values()) == int(0.1 * total)
    assert res.density == density(net)
    for a, b in zip(masked_layers(net).values(), masked_layers(target).values()):
        assert torch.equal(a.mask, b.mask) and b.use_mask


def test_moving_average_is_the_mean_of_the_last_k_normalised_scores():
    net = _net()
    method = DAPD(0.25, moving_average=2)
    method.init(net, _loss(net, 0))
    method.update(net, _loss(net, 1), 1)
    method.update(net, _loss(net, 2), 2)       # window now holds scores 1 and 2
    from neuropath.pathways import l1_normalise, snip_scores, topk_masks
    s1 = l1_normalise(snip_scores(net, _loss(net, 1)))
    s2 = l1_normalise(snip_scores(net, _loss(net, 2)))
    # the weights have not moved, so rescoring reproduces the window's content
    expected = topk_masks({k: (s1[k] + s2[k]) / 2 for k in s1}, 0.25)
    for name, m in masked_layers(net).items():
        assert torch.equal(m.mask[0], expected[name])


def test_zero_prune_mode_zeroes_inactive_weights():
    net = _net()
    Pathway(net, DAPD(0.1), WarmupFreeze(), prune="zero").init(_loss(net, 0))
    for m in masked_layers(net).values():
        assert torch.all(m.weight[~m.mask[0]] == 0)


def test_random_static_is_reproducible_and_exact():
    a, b = _net(), _net()
    RandomStatic(0.3, seed=4).init(a, None)
    RandomStatic(0.3, seed=4).init(b, None)
    for x, y in zip(masked_layers(a).values(), masked_layers(b).values()):
        assert torch.equal(x.mask, y.mask)


def test_member_scope_gives_each_q_network_of_a_twin_critic_its_share():
    """A loss that reaches only Q1 (as a starved score would) leaves Q2 disconnected under the global
    ranking; per member, Q2 keeps exactly its k weights and Q1 exactly its own."""
    from neuropath.algos.sac import TwinCritic
    from neuropath.pathways import StaticSNIP, layer_members
    torch.manual_seed(0)
    critic = TwinCritic(5, 2, [16, 16])
    assert set(layer_members(critic).values()) == {"q1", "q2"}
    obs, act, y = torch.randn(64, 5), torch.randn(64, 2), torch.randn(64, 1)
    loss = lambda: (critic(obs, act)[0] - y).pow(2).mean()           # noqa: E731
    per_q = {q: sum(m.weight.numel() for n, m in masked_layers(critic).items() if n.startswith(q + "."))
             for q in ("q1", "q2")}

    def kept(q):
        return sum(int(m.mask.sum()) for n, m in masked_layers(critic).items() if n.startswith(q + "."))
    StaticSNIP(0.1).init(critic, loss)
    assert kept("q2") == 0 and kept("q1") == int(0.1 * (per_q["q1"] + per_q["q2"]))
    StaticSNIP(0.1, scope="member").init(critic, loss)
    assert kept("q1") == int(0.1 * per_q["q1"]) and kept("q2") == int(0.1 * per_q["q2"])


def test_reachable_inputs_follows_kept_paths_only():
    """Input 0 reaches the output through hidden unit 0; input 1 only through hidden unit 1, which has no
    outgoing weight; input 2 has no weight at all. Only input 0 keeps a path."""
    from neuropath.pathways.masks import reachable_inputs
    first = torch.tensor([[1., 0., 0.],      # hidden 0 <- input 0
                          [0., 1., 0.]])     # hidden 1 <- input 1
    last = torch.tensor([[1., 0.]])          # output <- hidden 0 only
    assert reachable_inputs([first, last]).tolist() == [True, False, False]
    assert reachable_inputs([first, torch.ones(1, 2)]).tolist() == [True, True, False]
    assert reachable_inputs([torch.ones(2, 3), torch.zeros(1, 2)]).tolist() == [False, False, False]


def test_cut_off_inputs_per_member_of_a_live_network():
    """The twin critic's members are checked apart (an input kept by q1 but not by q2 is cut off in q2); a
    dense layer counts as all kept; a network that is not one chain per member reports nothing."""
    from neuropath.algos.sac import TwinCritic
    from neuropath.pathways.masks import cut_off_inputs, ranges
    from neuropath.pathways.layers import MaskedConv2d
    critic = TwinCritic(3, 1, [2])
    first = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.bool)
    critic.q1[0].set_mask(first)
    critic.q1[2].set_mask(torch.tensor([[1, 0]], dtype=torch.bool))      # only hidden 0 reaches the output
    critic.q2[0].set_mask(first)
    critic.q2[2].set_mask(torch.zeros(1, 2, dtype=torch.bool))
    critic.q2[2].use_mask = False                      # runs dense: its stored (empty) mask does not count
    assert cut_off_inputs(critic) == {"q1": [1, 2, 3], "q2": [2, 3]}
    conv = nn.Sequential(MaskedConv2d(1, 2, 3), nn.Flatten(), MaskedLinear(2, 1))
    conv[0].set_mask(torch.zeros_like(conv[0].weight, dtype=torch.bool))
    assert cut_off_inputs(conv) == {}
    assert ranges([0, 1, 2, 5, 7, 8]) == "0–2, 5, 7–8" and ranges([4]) == "4"
