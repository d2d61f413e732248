"""Exported pathway policies: same actions as the masked torch policy, dead units removed
correctly (constants folded), loadable without neuropath or torch, clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import neuropath as npth
from neuropath.algos.sac import Actor
from neuropath.efficiency import compact_policy
from neuropath.efficiency.export import compact_layers, export_policy, export_run, summary
from neuropath.pathways import MaskedLinear
from neuropath.policy import Policy

from .conftest import TINY

KERNELS = ["numpy"] + (["numba"] if compact_policy._numba is not None else [])


def _layers(actor):
    return [m for m in actor.net if isinstance(m, MaskedLinear)]


def _random_masked(obs_dim=17, act_dim=6, hidden=(64, 64), keep=0.05, seed=0):
    torch.manual_seed(seed)
    actor = Actor(obs_dim, act_dim, list(hidden))
    for m in _layers(actor):
        m.set_mask(torch.rand(m.weight.shape) < keep)
        torch.nn.init.normal_(m.bias, 0.0, 0.5)              # biases matter for constant units
    low = np.linspace(-2.0, -0.5, act_dim).astype(np.float32)
    return Policy(actor, low, -low * 3, "Test-v0")


def _dead_unit_policy():
    """5 → 8 → 8 → 2 actions, masks built to create every kind of dead unit:
    hidden-1 units 0 (bias +0.7) and 1 (bias -0.4) have no input: constants relu(b);
    hidden-1 unit 2 has inputs but no output; hidden-2 unit 3 reads only the constant unit 0,
    so it becomes a constant after folding; hidden-2 unit 4 feeds only a log-std row (dropped
    at export), so it has no output left; hidden-2 unit 5 has no input and no output."""
    torch.manual_seed(1)
    actor = Actor(5, 2, [8, 8])
    l0, l1, l2 = _layers(actor)
    g = torch.Generator().manual_seed(2)
    m0 = torch.rand(8, 5, generator=g) < 0.6
    m1 = torch.rand(8, 8, generator=g) < 0.5
    m2 = torch.rand(4, 8, generator=g) < 0.7
    m0[0:2] = False
    m0[2, 0] = True
    m1[:, 2] = False
    m1[3] = False
    m1[3, 0] = True
    m1[:, 0] = False
    m1[3, 0] = True
    m1[4, 1] = True
    m2[:, 4] = False
    m2[3, 4] = True                                           # log-std row of action 1 only
    m1[5] = False
    m2[:, 5] = False
    m2[0, 3] = True                                           # the folded constant reaches the mean
    with torch.no_grad():
        l0.bias[0], l0.bias[1] = 0.7, -0.4
        l1.bias[3] = 0.9
    for layer, mask in zip((l0, l1, l2), (m0, m1, m2)):
        layer.set_mask(mask)
    return Policy(actor, np.array([-1.0, -2.0], np.float32), np.array([1.0, 3.0], np.float32), "Test-v0")


def _reachable_units(masks, act_dim):
    """Independent reference: hidden units on an active path from an input to a mean output."""
    fwd = [np.ones(masks[0].shape[1], bool)]
    for m in masks[:-1]:
        fwd.append((m[:, fwd[-1]]).any(axis=1))
    bwd = [np.zeros(masks[-1].shape[0], bool)]
    bwd[0][:act_dim] = True
    for m in reversed(masks[1:]):
        bwd.insert(0, (m[bwd[0]]).any(axis=0))
    return [f & b for f, b in zip(fwd[1:], bwd)]


def _check_same_actions(policy, out, rng, batches=(1, 256)):
    for kernel in KERNELS:
        cp = compact_policy.load(out, kernel=kernel)
        for b in batches:
            for _ in range(5 if b == 1 else 2):
                obs = rng.normal(0.0, 3.0, size=(b, cp.obs_dim))
                want = policy.predict(obs, deterministic=True)[0]
                got, state = cp.predict(obs[0] if b == 1 else obs, deterministic=True)
                assert state is None and got.shape == (want[0].shape if b == 1 else want.shape)
                np.testing.assert_allclose(got, want[0] if b == 1 else want, rtol=1e-5, atol=2e-5)
        unit = cp.act_unit(obs)
        np.testing.assert_allclose(unit, policy.act_unit(obs), rtol=1e-5, atol=2e-5)


def test_dead_units_are_removed_and_constants_folded(tmp_path):
    policy = _dead_unit_policy()
    masks = [m.mask[0].numpy() for m in _layers(policy.actor)]
    out = export_policy(policy, tmp_path / "out")
    cp = compact_policy.load(out)
    alive = _reachable_units(masks, act_dim=2)
    assert cp.sizes == [5, int(alive[0].sum()), int(alive[1].sum()), 2]
    assert not alive[0][[0, 1, 2]].any() and not alive[1][[3, 4, 5]].any()
    with np.load(out / "policy.npz") as f:
        for k, a in enumerate(alive, start=1):
            np.testing.assert_array_equal(f[f"kept_{k}"], np.flatnonzero(a))
        meta = json.loads(str(f["meta"]))
    # nnz: the mask's active weights between kept units (mean rows only), nothing else
    keep = [np.ones(5, bool), *alive, np.array([True, True, False, False])]
    expect = [int(m[np.ix_(keep[k + 1], keep[k])].sum()) for k, m in enumerate(masks)]
    assert [len(lay[2]) for lay in cp.layers] == expect == meta["nnz_after"]
    assert meta["nnz_mask"] == [int(m.sum()) for m in masks]
    assert meta["removed_constant"][0] >= 2 and meta["removed_constant"][1] >= 1
    assert meta["removed_no_output"][0] >= 1 and meta["removed_no_output"][1] >= 1
    # the constant relu(0.7) reaches the output through unit 3 of layer 2: leaving it out
    # (instead of folding it) would change the actions
    _check_same_actions(policy, out, np.random.default_rng(0))


def test_compact_layers_folds_a_constant_chain_exactly():
    w = [np.array([[0.0], [2.0]], np.float32), np.array([[3.0, 1.0]], np.float32),
         np.array([[0.5]], np.float32)]
    b = [np.array([0.25, 0.0], np.float32), np.array([0.1], np.float32), np.array([0.0], np.float32)]
    m = [np.array([[False], [True]]), np.array([[True, False]]), np.array([[True]])]
    comp = compact_layers(w, b, m)
    # unit 0 of layer 1 = relu(0.25) → layer 2 unit = relu(0.1 + 0.75) → output bias 0.5·0.85
    assert comp.sizes == [1, 0, 0, 1] and comp.nnz_after == [0, 0, 0]
    assert comp.layers[2][3][0] == pytest.approx(0.425)


def test_sparse_95_actor_matches_torch_at_batch_1_and_256(tmp_path):
    policy = _random_masked()
    out = export_policy(policy, tmp_path / "out", source="test")
    _check_same_actions(policy, out, np.random.default_rng(1))
    assert (out / "compact_policy.py").is_file() and "compact_policy.load" in (out / "README.txt").read_text()
    text = summary(out)
    assert "17→64→64→6" in text and str(out) in text


def test_exported_folder_loads_without_neuropath_or_torch(tmp_path):
    policy = _random_masked(seed=3)
    out = export_policy(policy, tmp_path / "out")
    obs = np.random.default_rng(2).normal(0.0, 2.0, size=(256, 17))
    np.save(tmp_path / "obs.npy", obs)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("neuropath", "torch"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, ".")
import numpy as np
import compact_policy
p = compact_policy.load(".")
obs = np.load({str(tmp_path / "obs.npy")!r})
one = np.stack([p.predict(o, deterministic=True)[0] for o in obs[:8]])
np.save({str(tmp_path / "actions.npy")!r}, np.concatenate([one, p.predict(obs, deterministic=True)[0]]))
assert "neuropath" not in sys.modules and "torch" not in sys.modules
print(p.kernel)
"""
    res = subprocess.run([sys.executable, "-I", "-c", code], cwd=out, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    got = np.load(tmp_path / "actions.npy")
    want = policy.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(got, np.concatenate([want[:8], want]), rtol=1e-5, atol=2e-5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny DAPD run (masks installed at step 50) and a tiny dense run, stopped at step 60."""
    root = tmp_path_factory.mktemp("runs")
    cfg = {**TINY, "steps": 100, "seed_steps": 50, "init_steps": 50, "eval_every": 100,
           "checkpoint_every": 100, "eval_episodes": 1, "window": 50, "keep_ratio": 0.2}
    for pathway in ("dapd", "dense"):
        trainer = npth.Trainer(npth.Config().set({**cfg, "pathway": pathway, "run_dir": str(root / pathway)}))
        trainer.train(callback=lambda step, info: step < 60)
    return root


def test_export_run_end_to_end_and_refusals(runs, tmp_path):
    out = export_run(runs / "dapd", tmp_path / "out")
    policy = npth.load_policy(runs / "dapd")
    _check_same_actions(policy, out, np.random.default_rng(3))
    meta = compact_policy.load(out, kernel="numpy").meta
    assert meta["env_id"] == "Hopper-v5" and meta["keep_ratio"] == 0.2 and meta["step"] == 60
    assert meta["source"] == str(runs / "dapd") and abs(meta["density"] - 0.2) < 0.01

    with pytest.raises(npth.UsageError, match="dense run"):
        export_run(runs / "dense", tmp_path / "dense_out")
    with pytest.raises(npth.UsageError, match="unknown export format 'onnx'"):
        export_run(runs / "dapd", tmp_path / "x", fmt="onnx")
    with pytest.raises(npth.UsageError, match="already exists"):
        export_run(runs / "dapd", out)                          # non-empty OUT: refused
    (tmp_path / "empty").mkdir()
    assert export_run(runs / "dapd", tmp_path / "empty") == tmp_path / "empty"   # empty OUT: fine
    assert not (tmp_path / "x").exists() and not (tmp_path / "dense_out").exists()


def test_policies_without_masks_are_refused(tmp_path):
    actor = Actor(3, 1, [4])                                  # masks never installed
    with pytest.raises(npth.UsageError, match="no pathway masks"):
        export_policy(Policy(actor, -np.ones(1), np.ones(1), "T"), tmp_path / "a")
    saved = tmp_path / "saved" / "policy.pt"                  # a saved policy file, no masks
    saved.parent.mkdir()
    Policy(actor, -np.ones(1), np.ones(1), "T").save(saved)
    with pytest.raises(npth.UsageError, match="no pathway masks"):
        export_run(saved, tmp_path / "a")
    saved.unlink()
    saved.parent.rmdir()
    for m in _layers(actor):
        m.set_mask(torch.ones_like(m.weight, dtype=torch.bool))
    with pytest.raises(npth.UsageError, match="all-ones masks"):
        export_policy(Policy(actor, -np.ones(1), np.ones(1), "T"), tmp_path / "b")
    assert not list(tmp_path.iterdir())                       # nothing half-written


def test_predict_rejects_stochastic_and_wrong_shapes(tmp_path):
    cp = compact_policy.load(export_policy(_random_masked(), tmp_path / "out"))
    with pytest.raises(ValueError, match="deterministic-only"):
        cp.predict(np.zeros(17))                     # SB3's default is the stochastic action
    with pytest.raises(ValueError, match="obs_dim 17"):
        cp.predict(np.zeros(16), deterministic=True)
