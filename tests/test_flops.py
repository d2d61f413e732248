"""FLOP accounting: dense counts against torch's FlopCounterMode (exact), sparse counts by
hand and against equivalent smaller dense networks, run totals against the run's own logs."""

import json
import shutil

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import neuropath as npth
from neuropath.algos.common import Batch, mlp
from neuropath.algos.sac import SAC, Actor, SACConfig, TwinCritic
from neuropath.efficiency.flops import (CONVENTION, LayerCount, NetCount, count_network, count_state,
                                        flops_of_run, format_flops, forward_flops, sac_counts,
                                        scoring_flops, update_flops)
from neuropath.errors import UsageError
from neuropath.pathways import grad_scores, masked_layers, snip_scores, unmasked
from neuropath.training.logging import read_csv, read_jsonl

from .conftest import TINY

OBS, ACT, B = 5, 3, 7


def measured(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def batch(n: int = B, nstep: int = 1) -> Batch:
    g = torch.Generator().manual_seed(1)
    b = Batch(torch.randn(n, OBS, generator=g), torch.rand(n, ACT, generator=g) * 2 - 1,
              torch.randn(n, 1, generator=g), torch.randn(n, OBS, generator=g), torch.ones(n, 1))
    if nstep > 1:
        b = b._replace(discount=torch.full((n, 1), 0.97), mid_obs=torch.randn(n, nstep - 1, OBS, generator=g),
                       mid_weight=torch.ones(n, nstep - 1))
    return b


def agent(hidden=(16, 16), actor_every: int = 1) -> SAC:
    torch.manual_seed(0)
    return SAC(OBS, ACT, SACConfig(hidden=list(hidden), batch_size=B, actor_every=actor_every))


def random_masks(sac: SAC, keep: float = 0.3) -> None:
    g = torch.Generator().manual_seed(2)
    for net in (sac.actor, sac.critic):
        for m in masked_layers(net).values():
            m.set_mask(torch.rand(m.weight.shape, generator=g) < keep)
    for (_, a), (_, t) in zip(masked_layers(sac.critic).items(), masked_layers(sac.critic_target).items()):
        t.set_mask(a.mask[0])


def block_masks(sac: SAC, small: list[int]) -> None:
    """Keep the top-left block of every layer so the pathway is exactly a dense SAC with
    hidden widths ``small``: same nnz per layer, same passes."""
    for net in (sac.actor.net, sac.critic.q1, sac.critic.q2, sac.critic_target.q1, sac.critic_target.q2):
        layers = list(masked_layers(net).values())
        for i, m in enumerate(layers):
            rows = m.out_features if i == len(layers) - 1 else small[i]
            cols = m.in_features if i == 0 else small[i - 1]
            mask = torch.zeros(m.weight.shape, dtype=torch.bool)
            mask[:rows, :cols] = True
            m.set_mask(mask)


# ---- dense: equal to FlopCounterMode -----------------------------------------------------------

def test_dense_forward_equals_flop_counter_and_hand_count():
    net = mlp(7, [16, 8], 3)
    x = torch.randn(5, 7)
    assert forward_flops(count_network(net), 5) == measured(lambda: net(x)) == 2 * 5 * (7 * 16 + 16 * 8 + 8 * 3)
    sac, b = agent(), batch()
    n = sac_counts(sac)
    assert forward_flops(n["actor"], B) == measured(lambda: sac.actor(b.obs))
    assert forward_flops(n["critic"], B) == measured(lambda: sac.critic(b.obs, b.action))
    assert forward_flops(n["critic"], B) == forward_flops(n["critic_target"], B)


@pytest.mark.parametrize("nstep", [1, 3])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_sac_update_equals_flop_counter(nstep, masked):
    """Two updates with actor_every=2: the first skips the actor, the second does not. A
    masked agent still runs dense matmuls, which is what FlopCounterMode (and our dense
    column) counts; its pathway count is smaller."""
    sac = agent(actor_every=2)
    if masked:
        random_masks(sac)
    opts, b, n = sac.make_optimizers(), batch(nstep=nstep), sac_counts(sac)
    for actor_update in (False, True):
        got = measured(lambda: sac.update(b, opts))
        parts = update_flops(n, B, actor_update=actor_update, nstep=nstep, dense=True)
        assert got == sum(parts.values())
        assert (parts["actor"] > 0) == actor_update and (parts["nstep"] > 0) == (nstep > 1)
        sparse = sum(update_flops(n, B, actor_update=actor_update, nstep=nstep).values())
        assert (sparse < got) if masked else (sparse == got)


def test_mask_scoring_passes_equal_flop_counter():
    """DAPD's SNIP scoring (all networks dense) and RigL/RLx2's grow gradient, measured on
    the real scoring code: the critic's first-layer input gradient is skipped in both of
    its passes, the actor's critic pass back-propagates to the action."""
    sac, b = agent(), batch()
    random_masks(sac)
    n = sac_counts(sac)
    scoring = sac.losses()
    with unmasked(sac):
        for name in ("actor", "critic"):
            for score in (snip_scores, grad_scores):           # --score grad runs SNIP's passes (on θ ⊙ m)
                got = measured(lambda: score(sac.networks[name], lambda: scoring[name](b)))
                assert got == scoring_flops(n, name, "snip", B)
    dense = agent()
    training = dense.losses(training=True)
    for name in ("actor", "critic"):
        got = measured(lambda: grad_scores(dense.networks[name], lambda: training[name](b)))
        assert got == scoring_flops(sac_counts(dense), name, "gradient", B)
    assert scoring_flops(n, "actor", "none", B) == 0
    with pytest.raises(ValueError):
        scoring_flops(n, "actor", "rigl", B)


def test_every_score_is_charged_its_own_scoring_passes():
    """SynFlow's rounds are batch-1 forward + backward passes of the scored network alone (by hand: rounds + 1
    of them); GraSP costs more than SNIP; per-network scores pick per-network rules."""
    from neuropath.efficiency.flops import MAC_FLOPS, _counted_scoring, _scoring_rule, _train_pass
    from neuropath.training.config import Config
    n = sac_counts(agent())
    cfg = Config().set({"hidden": [16, 16], "score_batch": B, "score": "synflow", "synflow_rounds": 3,
                        "actor_score": "grasp", "critic_score": "magnitude"})
    assert _scoring_rule(cfg, "actor") == ("counted", "counted") and _scoring_rule(cfg, "critic") == ("none", "none")
    cfg = cfg.set({"actor_score": None, "critic_score": None})
    for name in ("actor", "critic"):
        assert _counted_scoring(cfg, n, name) == 4 * MAC_FLOPS * _train_pass(n[name], dense=True)
    grasp = Config().set({"hidden": [16, 16], "score_batch": B, "score": "grasp"})
    for name in ("actor", "critic"):       # a Hessian-vector product costs more than the gradient it starts from
        assert _counted_scoring(grasp, n, name) > 2 * scoring_flops(n, name, "snip", B)


# ---- sparse: by hand, and equal to an equivalent smaller dense network ------------------------------

def test_hand_arithmetic_on_a_tiny_masked_network():
    net = mlp(3, [4], 2)
    l0, l1 = masked_layers(net).values()
    l0.set_mask(torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]]))        # 6 active
    l1.set_mask(torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]]))                        # 4 active
    c = count_network(net)
    assert [(x.active, x.weights, x.first) for x in c.layers] == [(6, 12, True), (4, 8, False)]
    assert c.params() == {"total": 12 + 4 + 8 + 2, "active": 6 + 4 + 4 + 2, "weights": 20,
                          "active_weights": 10, "biases": 6}
    assert forward_flops(c, 5) == 2 * 5 * 10 and forward_flops(c, 5, dense=True) == 2 * 5 * 20
    assert measured(lambda: net(torch.randn(5, 3))) == 2 * 5 * 20                 # the counter sees dense

    # One update by hand: actor A=10 (first layer 6); critic C = 3+2 + 5+2 = 12 (first layers 8).
    def layer(name, i, o, active, first):
        return LayerCount(name, i, o, active, o, first)
    actor = NetCount("actor", (layer("net.0", 3, 4, 6, True), layer("net.2", 4, 2, 4, False)))
    critic = NetCount("critic", (layer("q1.0", 4, 2, 3, True), layer("q1.2", 2, 1, 2, False),
                                 layer("q2.0", 4, 2, 5, True), layer("q2.2", 2, 1, 2, False)))
    nets = {"actor": actor, "critic": critic, "critic_target": critic}
    u = update_flops(nets, 2, nstep=3)
    assert u["critic"] == 2 * 2 * (10 + 12 + (12 + 12 + (12 - 8)))    # actor(s') + target + fwd, dW, dx
    assert u["actor"] == 2 * 2 * ((10 + 10 + (10 - 6)) + (12 + 12))   # actor fwd,dW,dx + critic fwd,dx
    assert u["nstep"] == 2 * 2 * 2 * 10                                # actor on 2 intermediate states


def test_masked_flops_follow_nnz_exactly():
    net = mlp(10, [20], 5)
    x = torch.randn(4, 10)
    dense = measured(lambda: net(x))
    g = torch.Generator().manual_seed(0)
    flops = []
    for keep in (1.0, 0.5, 0.1):
        for m in masked_layers(net).values():
            m.set_mask(torch.rand(m.weight.shape, generator=g) < keep)
        nnz = sum(int(m.mask.sum()) for m in masked_layers(net).values())
        flops.append(forward_flops(count_network(net), 4))
        assert flops[-1] == 2 * 4 * nnz
    assert flops[0] == dense and flops[0] > flops[1] > flops[2]


def test_block_masked_sac_counts_equal_the_small_dense_sac():
    """A [16,16] SAC masked to the top-left block of a [4,8] one needs exactly the small
    dense SAC's FLOPs: forward, updates (with n-step), and a grow gradient where only the
    scored network is dense (measured on a hybrid: big dense scored net, small others)."""
    big, small, hidden = agent((16, 16)), agent((4, 8)), [4, 8]
    block_masks(big, hidden)
    n = sac_counts(big)
    assert count_state(big.state_dict(), "critic") == n["critic"]                 # saved == live
    assert n["actor"].macs() == sac_counts(small)["actor"].macs(dense=True)
    b, opts = batch(nstep=3), small.make_optimizers()
    assert sum(update_flops(n, B, nstep=3).values()) == measured(lambda: small.update(b, opts))

    hybrid = agent((4, 8))                       # RigL actor event: actor dense, critic masked
    hybrid.actor = Actor(OBS, ACT, [16, 16])
    loss = hybrid.losses(training=True)["actor"]
    got = measured(lambda: grad_scores(hybrid.actor, lambda: loss(b)))
    assert got == scoring_flops(n, "actor", "gradient", B)

    hybrid = agent((4, 8))                       # RigL critic event: critic dense, actor + target masked
    hybrid.critic = TwinCritic(OBS, ACT, [16, 16])
    hybrid._critic_params = list(hybrid.critic.parameters())
    loss = hybrid.losses(training=True)["critic"]
    got = measured(lambda: grad_scores(hybrid.critic, lambda: loss(b._replace(discount=None, mid_obs=None))))
    assert got == scoring_flops(n, "critic", "gradient", B)


# ---- whole runs ----------------------------------------------------------------------------------

RLX2 = {"pathway": "rlx2", "keep_ratio": 0.2, "update_every": 50, "nstep_delay": 150, "buffer_min": 100,
        "buffer_check_every": 100, "buffer_check_size": 64, "actor_every": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("flops")
    out = {}
    for name, extra in (("rlx2", RLX2), ("dapd", {"keep_ratio": 0.2}), ("dense", {"pathway": "dense"})):
        t = npth.Trainer(npth.Config().set({**TINY, "steps": 300, **extra, "run_dir": str(root / name)}))
        t.train()
        out[name] = t
    return out


def test_rlx2_run_totals_match_updates_events_and_passes(runs):
    t = runs["rlx2"]
    rep = flops_of_run(t.run_dir)
    final = sac_counts(t.algo)                          # the live agent, not the checkpoint
    assert rep.updates == t.algo.updates == 300 - TINY["seed_steps"] + 1
    per = update_flops(final, TINY["batch_size"], nstep=3)
    per_dense = update_flops(final, TINY["batch_size"], nstep=3, dense=True)
    lines = rep.run
    assert lines["critic updates"].count == 201 and lines["critic updates"].pathway == 201 * per["critic"]
    assert lines["actor updates"].count == 100 and lines["actor updates"].pathway == 100 * per["actor"]
    assert lines["actor updates"].dense == 100 * per_dense["actor"]
    assert lines["n-step target forwards"].count == 201 - 150
    assert lines["n-step target forwards"].pathway == 51 * per["nstep"]
    events = read_jsonl(t.run_dir / "pathway.jsonl")
    for net in ("actor", "critic"):
        n_events = sum(e["event"] == "update" and e["net"] == net for e in events)
        assert n_events == 4                             # steps 100, 150, 200, 250
        line = lines[f"topology updates: {net}"]
        assert line.count == 4 and line.pathway == 4 * scoring_flops(final, net, "gradient", TINY["score_batch"])
    assert lines["buffer checks (actor fwd)"].count == sum(e["event"] == "buffer" for e in events) == 3
    assert lines["training"].pathway == sum(c.pathway for k, c in lines.items()
                                            if k not in ("training", "total") and not k.startswith(("acting", "eval")))
    assert 1 < rep.ratio < 1 / 0.2 + 1
    assert rep.params["actor"]["active_weights"] == sum(int(m.mask.sum()) for m in masked_layers(t.algo.actor).values())
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["run"]["critic updates"]["pathway_macs"] * 2 == lines["critic updates"].pathway
    text = format_flops(rep)
    assert CONVENTION in text and "MACs = FLOPs / 2" in text and "topology updates: critic" in text


def test_dapd_run_charges_each_update_at_the_masks_of_its_time(runs):
    """Brute force over steps: every update at the masks logged before it (first-layer
    densities move during warm-up, which changes the backward cost)."""
    t = runs["dapd"]
    rep = flops_of_run(t.run_dir)
    final = sac_counts(t.algo)
    events = [e for e in read_jsonl(t.run_dir / "pathway.jsonl") if e["event"] in ("init", "update")]
    assert len({e["layers"]["net.0"] for e in events if e["net"] == "actor"}) > 1
    total, current = 0, {}
    for s in range(300 - rep.updates + 1, 301):
        for e in events:
            if e["step"] < s:
                current[e["net"]] = {x.name: round(e["layers"][x.name] * x.weights) for x in final[e["net"]].layers}
        nets = {"actor": final["actor"].with_active(current["actor"]),
                "critic": final["critic"].with_active(current["critic"]),
                "critic_target": final["critic_target"].with_active(current["critic"])}
        total += update_flops(nets, TINY["batch_size"])["critic"]
    assert rep.run["critic updates"].pathway == total
    for net in ("actor", "critic"):
        line = rep.run[f"mask scoring: {net}"]
        assert line.count == sum(e["net"] == net for e in events)           # init + warm-up updates
        assert line.pathway == line.count * scoring_flops(final, net, "snip", TINY["score_batch"])
    assert rep.run["acting (initial scoring data)"].count == TINY["init_steps"]
    evals = read_csv(t.run_dir / "metrics.csv")
    assert rep.run["evaluation"].count == sum(round(float(r["length_mean"]) * TINY["eval_episodes"]) for r in evals)


def test_dense_run_ratio_one_and_per_update_equals_flop_counter(runs):
    t = runs["dense"]
    rep = flops_of_run(t.run_dir)
    assert rep.ratio == 1.0 and rep.run["total"].ratio == 1.0
    assert not [k for k in rep.run if k.startswith(("mask", "topology"))]
    assert rep.params["all"]["active"] == rep.params["all"]["total"]
    sac = SAC(t.algo.obs_dim, t.algo.act_dim, t.cfg.sac)
    sac.load_state_dict(torch.load(t.run_dir / "checkpoints" / (t.run_dir / "checkpoints" / "latest").read_text()
                                   / "state.pt", weights_only=False)["algo"])
    b = t.buffer.sample(TINY["batch_size"])
    assert measured(lambda: sac.update(b, sac.make_optimizers())) == rep.per_update["update"].pathway


def test_bad_run_dirs_raise_one_line_usage_errors(runs, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        flops_of_run(tmp_path / "nope")
    bad = tmp_path / "copy"
    shutil.copytree(runs["dense"].run_dir, bad)
    ckpt = bad / "checkpoints" / (bad / "checkpoints" / "latest").read_text().strip()
    (ckpt / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="corrupt") as err:
        flops_of_run(bad)
    assert "\n" not in str(err.value)
    shutil.rmtree(bad / "checkpoints")
    with pytest.raises(UsageError, match="no checkpoint"):
        flops_of_run(bad)


@pytest.mark.parametrize("torso,shape", [("minatar", (4, 10, 10)), ("nature", (4, 84, 84))])
def test_dqn_update_counted_with_its_convolutions_equals_flop_counter_mode(torso, shape):
    from neuropath.algos.dqn import DQN, DQNBatch, DQNConfig
    from neuropath.efficiency.counted_flops import MAC_FLOPS, counting
    torch.manual_seed(0)
    dqn = DQN(shape, 6, DQNConfig(), torso=torso)
    obs = torch.rand(8, *shape)
    b = DQNBatch(obs, torch.zeros(8, dtype=torch.long), torch.zeros(8), obs, torch.ones(8))
    opts = dqn.make_optimizers()
    with FlopCounterMode(display=False) as fc:
        dqn.update(b, opts)
    with counting({"q": dqn.q, "q_target": dqn.q_target}) as macs:
        dqn.update(b, opts)
    assert MAC_FLOPS * sum(m.dense for m in macs.values()) == fc.get_total_flops()
