"""Sparse-training baselines (SET, RigL, RLx2): allocation, drop/grow, and short real runs."""

import math

import pytest
import torch

from neuropath.algos.common import mlp
from neuropath.cli import main
from neuropath.pathways import (DynamicSparse, Pathway, Periodic, cosine_fraction, layer_counts,
                                masked_layers)
from neuropath.training.logging import read_csv, read_jsonl

from .conftest import TINY
from .test_train import _flags


def _shapes(net):
    return {n: tuple(m.weight.shape) for n, m in masked_layers(net).items()}


def test_erk_follows_the_formula_with_an_exact_total():
    shapes = {"in": (256, 17), "hid": (256, 256), "out": (12, 256)}      # HalfCheetah actor
    counts = layer_counts(shapes, 0.05, "erk")
    total = sum(o * i for o, i in shapes.values())
    assert sum(counts.values()) == int(0.05 * total)
    eps = {n: counts[n] / (o + i) for n, (o, i) in shapes.items()}   # density = ε(n_in+n_out)/(n_in·n_out)
    assert max(eps.values()) == pytest.approx(min(eps.values()), rel=0.005)
    dens = {n: counts[n] / (o * i) for n, (o, i) in shapes.items()}
    assert dens["out"] > dens["in"] > dens["hid"]


def test_erk_makes_small_layers_dense_and_resolves_the_rest():
    shapes = {"a": (256, 23), "b": (256, 256), "c": (1, 256)}              # a Q network
    counts = layer_counts(shapes, 0.05, "erk")
    assert counts["c"] == 256                                             # the head is dense
    assert sum(counts.values()) == int(0.05 * (256 * 23 + 256 * 256 + 256))
    eps_a, eps_b = counts["a"] / (256 + 23), counts["b"] / 512
    assert eps_a == pytest.approx(eps_b, rel=0.01)


def test_uniform_gives_every_layer_the_same_fraction():
    counts = layer_counts({"a": (100, 10), "b": (100, 100)}, 0.1, "uniform")
    assert counts == {"a": 100, "b": 1000}


def test_a_ratio_that_empties_a_layer_is_refused_by_name():
    with pytest.raises(ValueError, match="layer b .*without a single weight"):
        layer_counts({"a": (1000, 1000), "b": (1, 3)}, 1e-6, "uniform")


def test_cosine_drop_fraction():
    assert cosine_fraction(0, 0.5, 100) == 0.5
    assert cosine_fraction(50, 0.5, 100) == pytest.approx(0.25)
    assert cosine_fraction(100, 0.5, 100) == 0.0 and cosine_fraction(150, 0.5, 100) == 0.0


def _net(seed=0):
    torch.manual_seed(seed)
    return mlp(6, [32, 32], 3)


def _loss(net):
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(5))
    return lambda: net(x).pow(2).mean()


@pytest.mark.parametrize("grow", ["random", "gradient"])
def test_drop_grow_keeps_counts_drops_smallest_and_starts_new_weights_at_zero(grow):
    net = _net()
    method = DynamicSparse(0.2, grow=grow, drop_fraction=0.5, end_step=100, seed=1)
    method.init(net, None)
    counts = method.counts(net)
    with torch.no_grad():                            # give the active weights distinct values
        for m in masked_layers(net).values():
            m.weight.add_(torch.randn_like(m.weight) * m.mask[0])
    before = {n: (m.mask[0].clone(), m.weight.detach().clone()) for n, m in masked_layers(net).items()}
    grads = None
    if grow == "gradient":
        from neuropath.pathways import grad_scores
        grads = grad_scores(net, _loss(net))
    method.update(net, _loss(net), 0)
    for name, m in masked_layers(net).items():
        old, w_old = before[name]
        new = m.mask[0]
        assert int(new.sum()) == counts[name]                     # exact count per layer
        k = int(0.5 * int(old.sum()))
        kept_by_magnitude = torch.topk(torch.where(old, w_old.abs(), torch.tensor(-1.0)).flatten(),
                                       int(old.sum()) - k).indices
        assert new.flatten()[kept_by_magnitude].all()             # the largest survive
        assert (m.weight[~new] == 0).all()                        # dropped are zero
        assert (m.weight[new & ~old] == 0).all()                  # brand-new start at zero
        regrown = new & old
        assert torch.equal(m.weight[regrown], w_old[regrown])     # survivors keep values
        if grads is not None:                                     # RigL grows the top |grad|
            outside = ~torch.zeros_like(old).flatten().index_fill(0, kept_by_magnitude, True)
            grown = new.flatten() & outside
            g = grads[name].flatten()
            assert g[grown].min() >= g[outside & ~grown].max()


def test_rlx2_initial_mask_is_the_largest_initial_weights():
    net = _net()
    w0 = {n: m.weight.detach().abs().clone() for n, m in masked_layers(net).items()}
    DynamicSparse(0.1, init="magnitude").init(net, None)
    for name, m in masked_layers(net).items():
        assert w0[name][m.mask[0]].min() >= w0[name][~m.mask[0]].max()


def test_pathway_zeroes_new_connections_in_the_tied_target_and_can_leave_adam_alone():
    net, target = _net(), _net(1)
    target.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters())
    method = DynamicSparse(0.2, grow="random", drop_fraction=0.5, end_step=100, seed=3)
    pw = Pathway(net, method, Periodic(10), opt, tied=[target], prune="zero", reset_optimizer=False)
    pw.init(None)
    for _ in range(3):                               # non-zero Adam state and drifting weights
        opt.zero_grad()
        _loss(net)().backward()
        opt.step()
        with torch.no_grad():
            for a, b in zip(target.parameters(), net.parameters()):
                a.add_(1.0)                          # target differs from online everywhere
    state = {id(p): opt.state[p]["exp_avg"].clone() for p in net.parameters()}
    before = {n: m.mask[0].clone() for n, m in masked_layers(net).items()}
    pw.update(10, _loss(net))
    for (name, m), t in zip(masked_layers(net).items(), masked_layers(target).values()):
        new_on = m.mask[0] & ~before[name]
        assert new_on.any() and torch.equal(t.mask, m.mask)
        assert (t.weight[new_on] == 0).all() and (t.weight[~m.mask[0]] == 0).all()
        assert torch.equal(opt.state[m.weight]["exp_avg"], state[id(m.weight)])   # RLx2: untouched


@pytest.mark.parametrize("method", ["set", "rigl", "rlx2"])
def test_short_real_runs_keep_the_sparsity_exact(tmp_path, method):
    run = tmp_path / method
    extra = {"update_every": 100, "nstep_delay": 50, "buffer_min": 50, "buffer_check_every": 200,
             "buffer_check_size": 64} if method == "rlx2" else {"update_every": 100}
    assert main(["train", *_flags({**TINY, "steps": 600, **extra}), "--pathway", method,
                 "--actor-keep", "0.1", "--critic-keep", "0.05", "--run-dir", str(run)]) == 0
    rows = read_csv(run / "metrics.csv")
    assert all(abs(float(r["actor_density"]) - 0.1) < 1e-3 and abs(float(r["critic_density"]) - 0.05) < 1e-3
               for r in rows)
    events = read_jsonl(run / "pathway.jsonl")
    updates = [e for e in events if e["event"] == "update"]
    assert {e["net"] for e in updates} == {"actor", "critic"}
    assert all(e["changed"] > 0 for e in updates if e["step"] <= 300)      # ζ decays to 0 at the end
    end = 600 if method == "rlx2" else 480                    # published: 100% / 80% of the run
    assert sorted({e["step"] for e in updates}) == list(range(100, end, 100))
    if method == "rlx2":
        buffer = [e for e in events if e["event"] == "buffer"]
        assert [e["step"] for e in buffer] == [200, 400, 600]
        assert all(math.isfinite(e["distance"]) for e in buffer)
