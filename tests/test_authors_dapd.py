"""DAPD as the authors' code runs it, setting by setting, and the entry rule for weights that join a pathway."""

import math

import pytest
import torch
import yaml

import neuropath as npth
from neuropath.algos.common import adam
from neuropath.algos.sac import SAC, SACConfig
from neuropath.experiments.report import method_label, run_settings
from neuropath.experiments.sweep import Grid
from neuropath.pathways import get_masks
from neuropath.pathways.optim import OwnAgeBiasCorrection
from neuropath.training.build import build_pathways
from neuropath.training.logging import read_jsonl
from neuropath.training.run_dir import load_run_config
from neuropath.training.swap_probe import SwapProbe

from .conftest import TINY

# mask and evaluation on the same steps (100, 200, 300) so that their order matters
BOUNDARY = {**TINY, "steps": 300, "mask_every": 100, "eval_every": 100, "moving_average": 1, "freeze_return": "none"}


def _flat(masks: dict) -> torch.Tensor:
    return torch.cat([m.flatten() for m in masks.values()])


def _trainer(tmp_path, name: str, **settings) -> npth.Trainer:
    return npth.Trainer(npth.Config().set({**BOUNDARY, **settings, "run_dir": str(tmp_path / name)}))


@pytest.mark.parametrize("order", ["eval-first", "mask-first"])
def test_an_evaluation_where_an_update_is_due_runs_the_mask_the_order_says(tmp_path, order):
    t = _trainer(tmp_path, order, boundary_order=order)
    pw = t.pathways["actor"]
    evaluated, before, after = {}, {}, {}
    evaluate, update = t.evaluate, pw.update

    def spy_evaluate():
        evaluated[t.step] = _flat(get_masks(t.algo.actor))
        return evaluate()

    def spy_update(step, loss, **kw):
        before[step] = _flat(get_masks(t.algo.actor))
        out = update(step, loss, **kw)
        after[step] = _flat(get_masks(t.algo.actor))
        return out
    t.evaluate, pw.update = spy_evaluate, spy_update
    t.train()
    assert set(evaluated) == {100, 200, 300}
    for step in (100, 200):
        assert not torch.equal(before[step], after[step])        # the update did change the mask
        assert torch.equal(evaluated[step], before[step] if order == "eval-first" else after[step])


def _all_masks(net) -> torch.Tensor:
    return torch.cat([b.flatten().float() for n, b in net.named_buffers() if n.endswith("mask")])


OTHER_KINDS = {
    "dqn": {"algo": "dqn", "env": "CartPole-v1", "dqn_hidden": [16, 16], "dqn_batch_size": 16, "train_every": 1,
            "eps_decay_steps": 100},
    "mt10": {"benchmark": "MT10", "tasks": "reach-v3,push-v3", "episode_steps": 40,
             "freeze_success": 1.0, "freeze_step": 10 ** 6},
}


@pytest.mark.parametrize("order", ["eval-first", "mask-first"])
@pytest.mark.parametrize("kind", list(OTHER_KINDS))
def test_dqn_and_mt10_evaluate_at_a_boundary_in_the_order_the_setting_names(tmp_path, kind, order):
    """The same order as SAC's: eval-first evaluates (and tests the freeze) on the mask it trained with, before
    the mask update due at that step; mask-first (these loops' order before 0.3) evaluates the new mask."""
    settings = {"seed_steps": 50, "init_steps": 50, "eval_episodes": 1, "window": 100, "score_batch": 16,
                "hidden": [16, 16], "batch_size": 16, **OTHER_KINDS[kind]}
    settings = {**BOUNDARY, **settings, "boundary_order": order, "run_dir": str(tmp_path / f"{kind}-{order}")}
    unread = {"dqn": ("hidden", "batch_size"), "mt10": ("env", "init_steps")}[kind]
    settings = {k: v for k, v in settings.items() if k not in unread}
    t = npth.Trainer(npth.Config().set(settings))
    net = next(iter(t.algo.networks.values()))
    evaluated, before, after = {}, {}, {}
    evaluate, update = t.evaluate, t.driver.update

    def spy_evaluate():
        evaluated[t.step] = _all_masks(net)
        return evaluate()

    def spy_update(step, due, **kw):
        before[step] = _all_masks(net)
        out = update(step, due, **kw)
        after[step] = _all_masks(net)
        return out
    t.evaluate, t.driver.update = spy_evaluate, spy_update
    t.train()
    assert {100, 200, 300} <= set(evaluated)
    for step in (100, 200):
        assert not torch.equal(before[step], after[step])        # the update did change the mask
        assert torch.equal(evaluated[step], before[step] if order == "eval-first" else after[step])


def test_a_return_freeze_at_a_boundary_stops_that_boundarys_update(tmp_path):
    """eval-first: the freeze test comes before the mask update, so a freeze locks in the mask that was evaluated."""
    t = _trainer(tmp_path, "freeze", freeze_return="-1000000")       # any return passes: freezes at step 100
    t.train()
    events = read_jsonl(tmp_path / "freeze" / "pathway.jsonl")
    assert {e["step"] for e in events if e["event"] == "freeze"} == {100}
    assert not [e for e in events if e["event"] == "update" and e["step"] >= 100]


@pytest.mark.parametrize("temperature", ["init", "current"])
def test_the_scoring_losses_use_the_temperature_the_setting_names(tmp_path, temperature):
    t = _trainer(tmp_path, temperature, score_temperature=temperature, steps=200)
    with torch.no_grad():
        t.algo.log_alpha.fill_(math.log(0.02))        # a learned α far from the initial 0.1
    seen, scoring = [], []
    alpha, pw = t.algo._alpha, t.pathways["critic"]
    update = pw.update

    def spy_alpha(temp=None):
        value = alpha(temp)
        if scoring:
            seen.append(float(value))
        return value

    def spy_update(*args, **kw):
        scoring.append(True)
        try:
            return update(*args, **kw)
        finally:
            scoring.clear()
    t.algo._alpha, pw.update = spy_alpha, spy_update
    t.train()
    assert seen
    want = 0.1 if temperature == "init" else math.exp(t.algo.log_alpha.item())
    # "current": the learned α at the time of scoring; it moved little from 0.02 over 200 steps
    assert all(v == pytest.approx(0.1, rel=1e-6) for v in seen) if temperature == "init" else \
        all(abs(v - 0.02) < 0.005 for v in seen) and want < 0.05


@pytest.mark.parametrize("batches,draws", [("separate", 2), ("shared", 1)])
def test_one_scoring_batch_serves_both_networks_when_shared(tmp_path, batches, draws):
    t = _trainer(tmp_path, batches, score_batches=batches, steps=100, eval_every=100)
    calls = []
    sample = t.buffer.sample_recent
    t.buffer.sample_recent = lambda *a: calls.append(t.step) or sample(*a)
    t.train()
    assert calls and all(calls.count(s) == draws for s in set(calls))


def _sac_with_pathways(rule: str, on_change: str):
    cfg = npth.Config().set({"hidden": [32, 32], "adam_on_change": on_change, "entry_rule": rule,
                             "moving_average": 1})
    algo = SAC(5, 2, SACConfig(hidden=[32, 32]))
    opts = algo.make_optimizers()
    return algo, opts, build_pathways(cfg, algo, opts)


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    from neuropath.algos.common import random_batch
    return random_batch(n, 5, 2, g)


@pytest.mark.parametrize("on_change", ["zero", "keep"])
def test_adam_moments_are_zeroed_or_kept_where_the_mask_changes(on_change):
    algo, opts, pws = _sac_with_pathways("global", on_change)
    losses = algo.losses()
    for name, pw in pws.items():
        pw.init(lambda n=name: losses[n](_batch()))
    for i in range(30):
        algo.update(_batch(seed=i + 1), opts)
    pw, layers = pws["actor"], [algo.actor.net[i] for i in (0, 2, 4)]
    state = opts["actor"].state
    moments = [state[m.weight]["exp_avg"].clone() for m in layers]
    old = [m.mask[0].clone() for m in layers]
    pw.update(30, lambda: losses["actor"](_batch(seed=99)))
    changed = torch.cat([(o != m.mask[0]).flatten() for o, m in zip(old, layers)])
    before = torch.cat([x.flatten() for x in moments])
    now = torch.cat([state[m.weight]["exp_avg"].flatten() for m in layers])
    assert changed.any() and before[changed].abs().max() > 0       # the changed entries had moments
    if on_change == "zero":
        assert torch.all(now[changed] == 0) and torch.equal(now[~changed], before[~changed])
    else:
        assert torch.equal(now, before)


def test_an_entry_that_joins_with_own_age_steps_like_a_fresh_adam():
    """Entries 5-9 are masked (zero gradient) for 5000 steps, then join. With the own-age rule their
    trajectory is that of a fresh Adam started at the join; with the tensor's step count (torch) their first
    step is ~3.2 lr and their 20th ~6 lr."""
    torch.manual_seed(0)
    lr, J = 1e-3, 5000
    grads = [1 + 0.1 * torch.randn(10) for _ in range(5060)]   # a steady gradient, as a useful weight has
    active = torch.zeros(10, dtype=torch.bool)
    active[:5] = True

    def run(rule):
        p = torch.nn.Parameter(torch.randn(10, generator=torch.Generator().manual_seed(1)))
        opt = adam([p], lr=lr)
        fix = OwnAgeBiasCorrection(opt, [p]) if rule == "own-age" else None
        path = []
        for t, g in enumerate(grads):
            if t == J and fix is not None:
                fix.restart(p, ~active)
            p.grad = g * (active if t < J else 1.0)
            opt.step()
            path.append(p.detach().clone())
        return torch.stack(path)

    own, glob = run("own-age"), run("global")
    fresh_p = torch.nn.Parameter(own[J - 1, 5:].clone())
    fresh = adam([fresh_p], lr=lr)
    ref = []
    for g in grads[J:]:
        fresh_p.grad = g[5:].clone()
        fresh.step()
        ref.append(fresh_p.detach().clone())
    assert torch.allclose(own[J:, 5:], torch.stack(ref), atol=1e-6, rtol=0)
    assert torch.equal(own[:, :5], glob[:, :5])                     # the steady entries are untouched
    first = (glob[J, 5:] - glob[J - 1, 5:]).abs() / lr
    twentieth = (glob[J + 19, 5:] - glob[J + 18, 5:]).abs() / lr
    assert torch.all((first > 3.0) & (first < 3.3))                 # (1 - 0.9) / sqrt(1 - 0.999) = 3.16
    assert torch.all(twentieth > 5.0)                               # (1 - 0.9^20) / sqrt(1 - 0.999^20) = 6.2
    assert torch.allclose((own[J, 5:] - own[J - 1, 5:]).abs() / lr, torch.ones(5), atol=1e-3)


def test_own_age_in_a_pathway_restarts_exactly_the_entries_that_join(tmp_path):
    algo, opts, pws = _sac_with_pathways("own-age", "zero")
    losses = algo.losses()
    for name, pw in pws.items():
        pw.init(lambda n=name: losses[n](_batch()))
    for i in range(20):
        algo.update(_batch(seed=i + 1), opts)
    pw, layers = pws["critic"], [algo.critic.q1[0], algo.critic.q1[2], algo.critic.q1[4],
                                 algo.critic.q2[0], algo.critic.q2[2], algo.critic.q2[4]]
    old = [m.mask[0].clone() for m in layers]
    pw.update(20, lambda: losses["critic"](_batch(seed=50)))
    joined = [m.mask[0] & ~o for m, o in zip(layers, old)]
    assert sum(int(j.sum()) for j in joined) > 0
    for m, j in zip(layers, joined):
        idx = next(i for i, p in enumerate(pw.entry_ages.params) if p is m.weight)
        born = pw.entry_ages.born.get(idx, torch.full_like(m.weight, -1.0))
        assert torch.all(born[j] == 20) and torch.all(born[~j] == -1)
    assert pw.entry_ages.young() == sum(int(j.sum()) for j in joined)


def test_the_swap_probe_measures_the_swap_and_the_drift_after_it():
    algo, opts, pws = _sac_with_pathways("global", "zero")
    losses = algo.losses()
    for name, pw in pws.items():
        pw.init(lambda n=name: losses[n](_batch()))
    probe = SwapProbe(algo, later=10, rows=32)
    probe.before("actor", _batch(32, seed=7))
    assert probe.after("actor", 0) == 0.0                           # nothing changed in between
    probe.before("critic", _batch(32, seed=7))
    pws["critic"].update(0, lambda: losses["critic"](_batch(seed=3)))
    assert probe.after("critic", 0) > 0                             # the swap changed Q
    assert probe.due(5) == []
    for i in range(10):
        algo.update(_batch(seed=i + 10), opts)
    events = {e["net"]: e for e in probe.due(10)}
    assert set(events) == {"actor", "critic"} and not probe.pending
    assert events["actor"]["drift"] > 0 and events["actor"]["shift"] == events["actor"]["drift"]


def test_authors_variant_in_a_sweep_presets_reports_and_old_runs(tmp_path):
    grid = Grid(["Hopper-v5"], ["dapd", "dapd@authors", "dapd@authors@own-age"], [0.05], [0], 1000).validate()
    specs = {s.name: s.settings for s in grid.runs()}
    authors = specs["Hopper-v5__dapd@authors__keep0.05__s0"]
    assert authors["pathway"] == "dapd" and authors["moving_average"] == 1 and authors["adam_on_change"] == "keep"
    assert specs["Hopper-v5__dapd@authors@own-age__keep0.05__s0"]["entry_rule"] == "own-age"
    preset = npth.Config().set(yaml.safe_load(open(_preset("halfcheetah-dapd-authors"))))
    assert (preset.pathway.score_temperature, preset.pathway.score_batches, preset.resolved_freeze_return()) == \
        ("init", "shared", 8000.0)
    cfg = preset.to_dict()
    assert method_label(cfg["pathway"], run_settings(cfg)) == "dapd@authors"
    assert method_label(npth.Config().to_dict()["pathway"], run_settings(npth.Config().to_dict())) == "dapd"
    # a run written before boundary_order existed ran mask-first, and is resumed and reported so
    old = npth.Config().to_dict()
    del old["pathway"]["boundary_order"]
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"neuropath": "0.1.0", **old}))
    assert load_run_config(run).pathway.boundary_order == "mask-first"
    assert run_settings(yaml.safe_load((run / "config.yaml").read_text()))["boundary_order"] == "mask-first"


def _preset(name):
    from neuropath.experiments.presets import preset_dir
    return preset_dir() / f"{name}.yaml"


def test_own_age_compiled_cpu_path_and_torch_path_agree():
    """The GPU path (torch ops) and the CPU kernel make the same correction."""
    torch.manual_seed(3)
    p = torch.nn.Parameter(torch.randn(50))
    opt = adam([p], lr=1e-3)
    fix = OwnAgeBiasCorrection(opt, [p])
    for _ in range(300):
        p.grad = torch.randn(50)
        opt.step()
    where = torch.rand(50) < 0.4
    opt.state[p]["exp_avg"][where] = 0
    opt.state[p]["exp_avg_sq"][where] = 0
    fix.restart(p, where)
    for _ in range(7):
        p.grad = torch.randn(50)
        opt.step()
    state, before = opt.state[p], p.detach().clone()
    with torch.no_grad():
        fix._correct_torch(p, state, fix._young[0], fix.born[0], 1e-3, 1e-8, 0.9, 0.999)
    by_torch = p.detach().clone()
    p.data.copy_(before)
    fix._steps -= 1
    fix.correct()
    assert not torch.equal(by_torch, before)
    assert torch.allclose(p.detach(), by_torch, atol=1e-7, rtol=0)


def test_inspect_summarises_what_the_swaps_did(tmp_path):
    from neuropath.experiments.inspect import inspect_run
    t = _trainer(tmp_path, "probe", steps=1200, eval_every=600, mask_every=200)
    t.train()
    events = read_jsonl(tmp_path / "probe" / "pathway.jsonl")
    shifts = [e["shift"] for e in events if e["event"] == "update"]
    assert len(shifts) == 12 and all(s >= 0 for s in shifts) and max(shifts) > 0
    later = [e for e in events if e["event"] == "swap-later"]
    assert {e["net"] for e in later} == {"actor", "critic"}
    assert all(e["step"] - e["swap_step"] >= 1000 for e in later)
    text = inspect_run(tmp_path / "probe")
    assert "a swap moved the deterministic actions by a median" in text and "1000 steps on" in text
    assert "a swap moved the Q values by a median" in text
