"""FLOP accounting by the one layer-hook counter: dense counts against torch's FlopCounterMode (exact) for
SAC's update, acting and scoring passes (and PPO's, DQN's), sparse counts by hand, against equivalent
smaller dense networks and against re-counting at real masks, run totals against the run's own logs."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import neuropath as npth
from neuropath.algos.common import Batch, mlp
from neuropath.algos.sac import SAC, Actor, SACConfig, TwinCritic
from neuropath.efficiency.counter import (CONVENTION, MAC_FLOPS, count, count_scoring, dense_flops, pathway_flops,
                                          si)
from neuropath.efficiency.flops import (_scoring_pass, count_update, flops_of_run, format_flops, load_sac,
                                        sac_masks, sac_nets)
from neuropath.errors import UsageError
from neuropath.pathways import grad_scores, masked_layers, snip_scores, unmasked
from neuropath.training import checkpoint
from neuropath.training.config import Config
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


def random_masks(sac: SAC, keep: float = 0.3, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
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


def counted(sac: SAC, fn) -> int:
    return dense_flops(count(sac_nets(sac), fn))


# ---- dense: equal to FlopCounterMode -----------------------------------------------------------

def test_dense_forward_equals_flop_counter_and_hand_count():
    net = mlp(7, [16, 8], 3)
    x = torch.randn(5, 7)
    c = count({"net": net}, lambda: net(x))
    assert dense_flops(c) == pathway_flops(c) == measured(lambda: net(x)) == 2 * 5 * (7 * 16 + 16 * 8 + 8 * 3)
    sac, b = agent(), batch()
    assert counted(sac, lambda: sac.actor(b.obs)) == measured(lambda: sac.actor(b.obs))
    assert counted(sac, lambda: sac.critic(b.obs, b.action)) == measured(lambda: sac.critic(b.obs, b.action))
    obs = np.zeros(OBS, np.float32)
    for deterministic in (False, True):                    # SAC's acting pass
        assert counted(sac, lambda: sac.act(obs, deterministic)) == measured(lambda: sac.act(obs, deterministic)) > 0


@pytest.mark.parametrize("nstep", [1, 3])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_sac_update_counts_equal_flop_counter(nstep, masked):
    """`count_update`'s parts are real `SAC.update` calls: the critic-only part is an update that skips the
    actor, critic + actor one that runs it, + nstep one on an n-step batch. A masked agent still runs dense
    matmuls, which is what FlopCounterMode (and the dense count) sees; its pathway count is smaller."""
    sac = agent(actor_every=2)
    if masked:
        random_masks(sac)
    parts = count_update(sac, B, nstep=nstep)
    work = copy.deepcopy(sac)
    opts = work.make_optimizers()
    skips = measured(lambda: work.update(batch(), opts))                   # update 1 of actor_every=2
    runs = measured(lambda: work.update(batch(), opts))                    # update 2
    assert dense_flops(parts["critic"]) == skips and dense_flops(parts["critic"]) + dense_flops(parts["actor"]) == runs
    if nstep > 1:
        work.updates = 2
        assert dense_flops(parts["critic"]) + dense_flops(parts["nstep"]) == measured(
            lambda: work.update(batch(nstep=nstep), opts))
    for part in parts.values():
        assert (pathway_flops(part) < dense_flops(part)) if masked else (pathway_flops(part) == dense_flops(part))


def test_mask_scoring_passes_equal_flop_counter():
    """DAPD's SNIP scoring (all networks dense) and RigL/RLx2's grow gradient, as `flops_of_run` counts them,
    against the real scoring code under FlopCounterMode: the hooks see which gradients autograd runs (the
    critic's scoring loss runs the actor forward only; the actor's back-propagates through the critic to the
    action without its weight gradients)."""
    cfg = Config().set({"hidden": [16, 16], "score_batch": B})
    from neuropath.algos.common import random_batch
    sac = agent()
    random_masks(sac)
    scoring = sac.losses()
    for name in ("actor", "critic"):
        b = random_batch(B, OBS, ACT, torch.Generator().manual_seed(1))
        c = _scoring_pass(cfg, sac, name, "dense")
        with unmasked(sac):
            for score in (snip_scores, grad_scores):           # --score grad runs SNIP's passes (on θ ⊙ m)
                assert measured(lambda: score(sac.networks[name], lambda: scoring[name](b))) == dense_flops(c)
        assert pathway_flops(c) == dense_flops(c)             # every network dense: the pathway pays it all
    dense = agent()
    training = dense.losses(training=True)
    for name in ("actor", "critic"):
        b = random_batch(B, OBS, ACT, torch.Generator().manual_seed(1))
        got = measured(lambda: grad_scores(dense.networks[name], lambda: training[name](b)))
        assert got == dense_flops(_scoring_pass(cfg, dense, name, "grow"))
        c = _scoring_pass(cfg, sac, name, "grow")             # masked: the grown network dense, the others not
        assert dense_flops(c) == got and pathway_flops(c) < got
    assert _scoring_pass(cfg, sac, "actor", "none") == {}
    assert _scoring_pass(Config().set({"score": "magnitude"}), sac, "actor", "dense") == {}


def test_gradients_nobody_asked_for_are_not_counted():
    """``autograd.grad`` w.r.t. the actor of a loss through the critic (whose weights could take a gradient):
    the critic's weight gradients do not run, and the counter charges none of them; a backward pass right
    after it, which wants every gradient, is charged them."""
    sac = agent()
    weights = [m.weight for m in masked_layers(sac.actor).values()]
    partial = lambda: torch.autograd.grad(sac.actor_loss(batch(), critic_grad=True)[0], weights)   # noqa: E731
    both = lambda: (partial(), sac.critic_loss(batch()).backward(), partial())                      # noqa: E731
    for fn in (partial, both):
        assert counted(sac, fn) == measured(fn)


def test_plain_torch_layers_and_in_place_activations_are_counted():
    """A new algorithm's networks need not be neuropath's: plain `nn.Linear` / `nn.Conv2d`, an in-place ReLU
    after a layer (the probes hand on a copy, which autograd lets it modify)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.nn.ReLU(inplace=True),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5), torch.nn.ReLU(inplace=True),
                              torch.nn.Linear(5, 1))
    x = torch.randn(6, 2, 6, 6, requires_grad=True)
    for fn in (lambda: net(x), lambda: net(x).sum().backward()):
        assert dense_flops(count({"net": net}, fn)) == measured(fn) > 0


def test_grasp_and_synflow_are_counted_by_flop_counter_mode_dense():
    """SynFlow's rounds are batch-1 forward + backward passes of the scored network alone, outside its
    layers' forward (by hand: rounds + 1 of them, no input gradient into the first layer); GraSP's double
    backward costs more than the SNIP gradient it starts from; per-network scores pick per-network rules."""
    sac = agent()
    random_masks(sac)
    cfg = Config().set({"hidden": [16, 16], "score_batch": B, "score": "synflow", "synflow_rounds": 3})
    for name in ("actor", "critic"):
        layers = list(masked_layers(sac.networks[name]).values())
        first = [m for m in layers if m.in_features in (OBS, OBS + ACT)]
        by_hand = 4 * MAC_FLOPS * (3 * sum(m.weight.numel() for m in layers) - sum(m.weight.numel() for m in first))
        c = _scoring_pass(cfg, sac, name, "dense")
        assert dense_flops(c) == pathway_flops(c) == by_hand
    def config(**kw) -> Config:                       # `Config.set` changes the config it is called on
        return Config().set({"hidden": [16, 16], "score_batch": B, "synflow_rounds": 3, **kw})
    grasp, snip = config(score="grasp"), config(score="snip")
    for name in ("actor", "critic"):
        assert dense_flops(_scoring_pass(grasp, sac, name, "dense")) > 2 * dense_flops(_scoring_pass(snip, sac, name, "dense"))
    mixed = config(score="synflow", actor_score="grasp", critic_score="magnitude")
    assert _scoring_pass(mixed, sac, "critic", "dense") == {}
    assert dense_flops(_scoring_pass(mixed, sac, "actor", "dense")) == dense_flops(_scoring_pass(grasp, sac, "actor", "dense"))


def test_ppo_update_and_scoring_equal_flop_counter():
    from neuropath.algos.ppo import PPO, PPOConfig, RolloutBatch
    torch.manual_seed(0)
    ppo = PPO(OBS, ACT, PPOConfig(hidden=[16, 8]))
    b = RolloutBatch(torch.randn(9, OBS), torch.randn(9, ACT), torch.zeros(9), torch.randn(9), torch.randn(9),
                     torch.randn(9))
    nets = {"actor": ppo.actor, "value": ppo.value}
    work = copy.deepcopy(ppo)
    opts = work.make_optimizers()
    c = count({"actor": work.actor, "value": work.value}, lambda: work.update(b, opts))
    assert dense_flops(c) == measured(lambda: work.update(b, opts)) > 0
    assert dense_flops(count(nets, lambda: ppo.step(b.obs[:1]))) == measured(lambda: ppo.step(b.obs[:1]))
    losses = ppo.losses()
    for name, net in nets.items():
        got = dense_flops(count_scoring("snip", net, lambda n=name: losses[n](b), nets))
        assert got == measured(lambda n=name: snip_scores(ppo.networks[n], lambda: losses[n](b)))


# ---- sparse: by hand, against equivalent smaller dense networks, and re-priced masks -------------

def test_hand_arithmetic_on_a_tiny_masked_network():
    """forward rows·nnz; backward: weight gradient rows·nnz, input gradient rows·nnz but not into the first
    layer (its input takes no gradient)."""
    net = mlp(3, [4], 2)
    l0, l1 = masked_layers(net).values()
    l0.set_mask(torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]]))        # 6 active
    l1.set_mask(torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]]))                        # 4 active
    x = torch.randn(5, 3)
    c = count({"net": net}, lambda: net(x))
    assert pathway_flops(c) == 2 * 5 * 10 and dense_flops(c) == 2 * 5 * 20 == measured(lambda: net(x))
    c = count({"net": net}, lambda: net(x).sum().backward())
    assert pathway_flops(c) == 2 * 5 * (6 + 4 + 6 + 4 + 4)            # fwd, dW of both, dx of the second
    assert dense_flops(c) == 2 * 5 * (12 + 8 + 12 + 8 + 8) == measured(lambda: net(x).sum().backward())
    with unmasked(net):                                                    # scoring runs every stored weight
        assert pathway_flops(count({"net": net}, lambda: net(x))) == 2 * 5 * 20


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
        flops.append(pathway_flops(count({"net": net}, lambda: net(x))))
        assert flops[-1] == 2 * 4 * nnz
    assert flops[0] == dense and flops[0] > flops[1] > flops[2]


def test_block_masked_sac_counts_equal_the_small_dense_sac():
    """A [16,16] SAC masked to the top-left block of a [4,8] one needs exactly the small dense SAC's FLOPs:
    forward, updates (with n-step), acting, and a grow gradient where only the scored network is dense
    (measured on a hybrid: big dense scored net, small others)."""
    big, small, hidden = agent((16, 16)), agent((4, 8)), [4, 8]
    block_masks(big, hidden)
    b = batch(nstep=3)
    assert pathway_flops(count(sac_nets(big), lambda: big.actor(b.obs))) == measured(lambda: small.actor(b.obs))
    parts = count_update(big, B, nstep=3)
    opts = small.make_optimizers()
    small.updates = 0                                       # update 1 with actor_every=1 runs the actor
    assert sum(pathway_flops(p) for p in parts.values()) == measured(lambda: small.update(b, opts))
    obs = np.zeros(OBS, np.float32)
    assert pathway_flops(count(sac_nets(big), lambda: big.act(obs))) == measured(lambda: small.act(obs))

    cfg = Config().set({"hidden": [16, 16], "score_batch": B})
    from neuropath.algos.common import random_batch
    b1 = random_batch(B, OBS, ACT, torch.Generator().manual_seed(1))
    hybrid = agent((4, 8))                       # RigL actor event: actor dense, critic masked
    hybrid.actor = Actor(OBS, ACT, [16, 16])
    loss = hybrid.losses(training=True)["actor"]
    got = measured(lambda: grad_scores(hybrid.actor, lambda: loss(b1)))
    assert got == pathway_flops(_scoring_pass(cfg, big, "actor", "grow"))

    hybrid = agent((4, 8))                       # RigL critic event: critic dense, actor + target masked
    hybrid.critic = TwinCritic(OBS, ACT, [16, 16])
    hybrid._critic_params = list(hybrid.critic.parameters())
    loss = hybrid.losses(training=True)["critic"]
    got = measured(lambda: grad_scores(hybrid.critic, lambda: loss(b1)))
    assert got == pathway_flops(_scoring_pass(cfg, big, "critic", "grow"))


def test_a_count_priced_at_other_masks_equals_counting_at_those_masks():
    """How a SAC run's warm-up updates are charged: counted once at the final masks, priced at the
    per-layer sizes of an earlier mask, equal to the hooks on an agent that really holds masks of those sizes."""
    final, earlier = agent(actor_every=2), agent(actor_every=2)
    random_masks(final, keep=0.3, seed=2)
    random_masks(earlier, keep=0.1, seed=3)                 # other sizes per layer
    masks = sac_masks(earlier)
    assert masks["actor"] != sac_masks(final)["actor"]
    priced = count_update(final, B, nstep=3)
    real = count_update(earlier, B, nstep=3)
    for key in priced:
        assert pathway_flops(priced[key], masks) == pathway_flops(real[key]) != pathway_flops(priced[key])


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


def saved_agent(t) -> SAC:
    ckpt = checkpoint.latest(t.run_dir)
    return load_sac(t.cfg, checkpoint.load_state(ckpt), ckpt)


def test_rlx2_run_totals_match_updates_events_and_passes(runs):
    t = runs["rlx2"]
    rep = flops_of_run(t.run_dir)
    sac = saved_agent(t)
    assert sac_masks(sac) == sac_masks(t.algo)                 # the checkpoint holds the live agent's masks
    assert rep.updates == t.algo.updates == 300 - TINY["seed_steps"] + 1
    parts = count_update(sac, TINY["batch_size"], nstep=3)
    lines = rep.run
    assert lines["critic updates"].count == 201 and lines["critic updates"].pathway == 201 * pathway_flops(parts["critic"])
    assert lines["actor updates"].count == 100 and lines["actor updates"].pathway == 100 * pathway_flops(parts["actor"])
    assert lines["actor updates"].dense == 100 * dense_flops(parts["actor"])
    assert lines["n-step target forwards"].count == 201 - 150
    assert lines["n-step target forwards"].pathway == 51 * pathway_flops(parts["nstep"])
    events = read_jsonl(t.run_dir / "pathway.jsonl")
    cfg = t.cfg
    for net in ("actor", "critic"):
        mine = [e for e in events if e["event"] == "update" and e["net"] == net]
        assert [e["step"] for e in mine] == [100, 150, 200, 250]
        assert len({json.dumps(e["layers"], sort_keys=True) for e in mine}) == 1     # drop/grow keeps layer sizes
        line = lines[f"topology updates: {net}"]
        assert line.count == 4 and line.pathway == 4 * pathway_flops(_scoring_pass(cfg, sac, net, "grow"))
    assert lines["buffer checks (actor fwd)"].count == sum(e["event"] == "buffer" for e in events) == 3
    assert lines["training"].pathway == sum(c.pathway for k, c in lines.items()
                                            if k not in ("training", "total") and not k.startswith(("acting", "eval")))
    assert 1 < rep.ratio < 1 / 0.2 + 1
    assert rep.params["actor"]["active_weights"] == sum(int(m.mask.sum()) for m in masked_layers(t.algo.actor).values())
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["run"]["critic updates"]["pathway_macs"] * 2 == lines["critic updates"].pathway
    text = format_flops(rep)
    assert CONVENTION in text and "MACs = FLOPs / 2" in text and "topology updates: critic" in text
    row = next(line for line in text.splitlines() if line.startswith("| **training** |"))
    assert f"| {si(lines['training'].dense)} | {si(lines['training'].pathway)} | {rep.ratio:.2f}x |" in row


def test_dapd_run_charges_each_update_at_the_masks_of_its_time(runs):
    """Brute force over steps: every update at the masks logged before it (first-layer densities move
    during warm-up, which changes the backward cost), each priced by the hooks' counts of a real update."""
    t = runs["dapd"]
    rep = flops_of_run(t.run_dir)
    sac = saved_agent(t)
    parts = count_update(sac, TINY["batch_size"])
    numel = {n: {k: m.weight.numel() for k, m in masked_layers(getattr(sac, n)).items()} for n in ("actor", "critic")}
    events = [e for e in read_jsonl(t.run_dir / "pathway.jsonl") if e["event"] in ("init", "update")]
    assert len({e["layers"]["net.0"] for e in events if e["net"] == "actor"}) > 1
    assert t.cfg.sac.actor_every == 1
    totals, current = {"critic": 0, "actor": 0}, {}
    for s in range(300 - rep.updates + 1, 301):
        for e in events:
            if e["step"] < s:
                current[e["net"]] = {k: round(e["layers"][k] * w) for k, w in numel[e["net"]].items()}
        masks = {"actor": current["actor"], "critic": current["critic"], "critic_target": current["critic"]}
        for part in totals:
            totals[part] += pathway_flops(parts[part], masks)
    assert rep.run["critic updates"].pathway == totals["critic"]
    assert rep.run["actor updates"].pathway == totals["actor"]
    for net in ("actor", "critic"):
        line = rep.run[f"mask scoring: {net}"]
        assert line.count == sum(e["net"] == net for e in events)           # init + warm-up updates
        assert line.pathway == line.count * dense_flops(_scoring_pass(t.cfg, sac, net, "dense"))
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
    nets = {"q": dqn.q, "q_target": dqn.q_target}
    loss = lambda: dqn.td_loss(b)          # noqa: E731
    with unmasked(dqn.q):                  # DAPD's scoring pass, as the DQN loop runs it
        assert dense_flops(count_scoring("snip", dqn.q, loss, nets)) == measured(lambda: snip_scores(dqn.q, loss))
