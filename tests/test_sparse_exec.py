"""Sparse execution of masked layers: the same numbers as `W ⊙ m`, computed on the mask only."""

import pytest
import torch
import torch.nn.functional as F

import neuropath as npth
from neuropath.algos.common import Batch
from neuropath.algos.sac import SAC, SACConfig
from neuropath.cli import main
from neuropath.engine.kernels import SparsePlan, sparse_linear
from neuropath.engine.sparse_exec import enable_sparse_execution, resolve_sparse
from neuropath.pathways import MaskedLinear, unmasked
from neuropath.pathways.masks import copy_masks, masked_layers
from neuropath.training.logging import read_csv

from .conftest import TINY


def _mask_with_empty_rows_and_cols(out: int, inp: int, density: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(out, inp, generator=g) < density
    m[1] = False                     # an output unit with no input weights (its bias only)
    m[:, 2] = False                  # an input feature no weight reads
    return m


@pytest.mark.parametrize("batch", [1, 7, 256])
@pytest.mark.parametrize("shape", [(17, 64), (64, 64), (64, 3)])
def test_sparse_linear_matches_masked_dense_values_and_gradients(batch, shape):
    inp, out = shape
    torch.manual_seed(batch)
    w = torch.randn(out, inp, requires_grad=True)
    b = torch.randn(out, requires_grad=True)
    m = _mask_with_empty_rows_and_cols(out, inp, 0.1, batch)
    x = torch.randn(batch, inp, requires_grad=True)
    g = torch.randn(batch, out)

    y_ref = F.linear(x, w * m.float(), b)
    y_ref.backward(g)
    ref = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    y = sparse_linear(x, w, b, SparsePlan.from_mask(m))
    y.backward(g)

    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip((x.grad, w.grad, b.grad), ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.all(w.grad[~m] == 0)                  # masked weights: exactly zero gradient
    assert torch.all(y[:, 1] == b[1])                  # a row with no entries outputs its bias


def test_plan_counts_and_orders_entries_like_the_mask():
    m = _mask_with_empty_rows_and_cols(9, 6, 0.4, 0)
    plan = SparsePlan.from_mask(m)
    assert plan.nnz == int(m.sum())
    dense = torch.zeros(9, 6, dtype=torch.bool)
    dense.view(-1)[plan.flat] = True
    assert torch.equal(dense, m)
    # CSC view: column j lists exactly the rows whose mask is on at j
    for j in range(6):
        rows = plan.col_rows[plan.col_ptr[j]:plan.col_ptr[j + 1]]
        assert sorted(rows.tolist()) == m[:, j].nonzero().flatten().tolist()


def test_layer_follows_mask_changes_and_runs_dense_when_unmasked():
    torch.manual_seed(0)
    layer = MaskedLinear(32, 16)
    enable_sparse_execution(layer)
    x = torch.randn(5, 32)
    for seed in range(3):                               # the executor rebuilds on each new mask
        m = torch.rand(16, 32, generator=torch.Generator().manual_seed(seed)) < 0.2
        layer.set_mask(m)
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight * m.float(), layer.bias))
    with unmasked(layer):
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    assert layer(x.double().float()).shape == (5, 16)
    assert layer(torch.randn(2, 5, 32)).shape == (2, 5, 16)   # 3-D input: dense path


def test_too_dense_layers_keep_the_dense_matmul():
    layer = MaskedLinear(8, 8)
    enable_sparse_execution(layer, max_density=0.3)
    layer.set_mask(torch.ones(8, 8, dtype=torch.bool))
    x = torch.randn(3, 8)
    layer(x)
    assert layer.executor.dense and layer.executor.plan is None


def _sac_pair(keep: float):
    torch.manual_seed(0)
    a = SAC(11, 3, SACConfig(hidden=[64, 64]))
    for net in (a.actor, a.critic):
        for layer in masked_layers(net).values():
            layer.set_mask(torch.rand_like(layer.weight) < keep)
    copy_masks(a.critic, a.critic_target)
    b = SAC(11, 3, SACConfig(hidden=[64, 64]))
    b.load_state_dict(a.state_dict())
    enable_sparse_execution(b.actor, b.critic, b.critic_target)
    return a, b


def test_sac_updates_on_the_pathway_track_the_masked_updates():
    """Same updates up to float summation order. Adam divides by √v, so a weight whose gradient
    is ~1e-9 moves by ±lr on rounding noise: after one update all parameters agree to 2e-5; after
    30, each parameter tensor to 0.2% of its norm (a wrong gradient would be off by ~100%)."""
    masked, sparse = _sac_pair(0.1)
    opts = masked.make_optimizers(), sparse.make_optimizers()
    g = torch.Generator().manual_seed(1)
    for i in range(30):
        bt = Batch(torch.randn(64, 11, generator=g), torch.rand(64, 3, generator=g) * 2 - 1,
                   torch.randn(64, 1, generator=g), torch.randn(64, 11, generator=g), torch.ones(64, 1))
        torch.manual_seed(100 + i)                      # same policy noise in both
        masked.update(bt, opts[0])
        torch.manual_seed(100 + i)
        sparse.update(bt, opts[1])
        if i == 0:
            for (name, p), q in zip(masked.named_parameters(), sparse.parameters()):
                torch.testing.assert_close(q, p, rtol=0, atol=2e-5, msg=name)
    for (name, p), q in zip(masked.named_parameters(), sparse.parameters()):
        assert float((p - q).detach().norm() / p.detach().norm()) < 2e-3, name
    for q in (sparse.critic.q1, sparse.critic.q2):      # really ran sparse, one network-level node each
        assert q.executor.plans is not None


def test_static_pathway_run_has_the_same_curve_sparse_or_not(tmp_path):
    """A real loop (HalfCheetah: no terminations to flip) on a fixed pathway, sparse vs masked
    dense: rounding differences grow through Adam and the rollouts, so after 200 updates the
    runs agree to a few percent, not bit for bit; a wrong gradient would be off by far more."""
    from neuropath.training import checkpoint
    cfg = {**TINY, "env": "HalfCheetah-v5", "steps": 300, "eval_every": 100, "checkpoint_every": 100,
           "pathway": "static"}
    runs, weights = {}, {}
    for mode in ("on", "off"):
        trainer = npth.Trainer(npth.Config().set({**cfg, "sparse": mode, "run_dir": str(tmp_path / mode)}))
        trainer.train()
        assert trainer.sparse == (mode == "on")
        runs[mode] = [float(r["return_mean"]) for r in read_csv(tmp_path / mode / "metrics.csv")]
        weights[mode] = checkpoint.load_state(checkpoint.latest(tmp_path / mode))["algo"]
    # Before any update the two actors agree to float rounding (the kernel tests above check 1e-5);
    # a 1000-step MuJoCo episode amplifies that rounding, by how much depends on the CPU's vector
    # width (0.2% on an AVX-512 Xeon), so the first return is checked to 1%, not bit for bit.
    assert runs["on"][0] == pytest.approx(runs["off"][0], rel=1e-2)
    assert runs["on"] == pytest.approx(runs["off"], rel=0.1)
    for k, w in weights["off"].items():
        if k.endswith("mask"):
            assert torch.equal(weights["on"][k], w), k
        elif k.endswith("weight"):
            assert float((weights["on"][k] - w).norm() / w.norm()) < 0.03, k


def test_auto_mode_turns_on_only_where_it_wins():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_sparse("auto", cpu, [0.05, 0.05], False)
    assert not resolve_sparse("auto", cpu, [0.05, 0.5], False)     # a network too dense
    assert not resolve_sparse("auto", cuda, [0.05, 0.05], False)
    assert not resolve_sparse("on", cpu, [0.05, 0.05], True)       # dense method
    assert not resolve_sparse("off", cpu, [0.05, 0.05], False)


def test_bad_sparse_mode_fails_with_one_line(tmp_path, capsys):
    rc = main(["train", "--env", "Hopper-v5", "--sparse", "fast", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "--sparse must be auto, on or off" in err and not (tmp_path / "r").exists()


def test_multi_task_layers_on_the_sparse_kernels_match_the_batched_dense_path():
    """Per-task pathways over one shared weight (offline MT10 NPF): forward, the per-slice weight gradient
    g_t ⊙ m_t, the averaged shared gradient and the input gradient equal the dense bmm's."""
    from neuropath.pathways.multitask import average_task_grads, merge_task_weights, task_layers, task_mlp
    torch.manual_seed(0)
    dense = task_mlp(7, [32, 32], 3, tasks=4)
    for layer in task_layers(dense).values():
        for t in range(4):
            layer.set_mask(torch.rand(layer.weight.shape[1:]) < 0.1, t)
    merge_task_weights(dense)
    sparse = task_mlp(7, [32, 32], 3, tasks=4)
    sparse.load_state_dict(dense.state_dict())
    for a, b in zip(task_layers(dense).values(), task_layers(sparse).values()):
        b.use_mask, b.shared = a.use_mask, a.shared
    assert enable_sparse_execution(sparse) == 3
    x = torch.randn(4, 9, 7)
    xs = x.clone().requires_grad_(True)
    xd = x.clone().requires_grad_(True)
    ys, yd = sparse(xs), dense(xd)
    assert torch.allclose(ys, yd, atol=1e-5)
    (ys.pow(2).sum()).backward()
    (yd.pow(2).sum()).backward()
    average_task_grads(sparse)
    average_task_grads(dense)
    for a, b in zip(task_layers(dense).values(), task_layers(sparse).values()):
        assert torch.allclose(a.weight.grad, b.weight.grad, atol=1e-4)
        assert torch.equal(b.weight.grad[0], b.weight.grad[3])           # one shared gradient in every slice
    assert torch.allclose(xs.grad, xd.grad, atol=1e-5)
    layer = next(iter(task_layers(sparse).values()))
    before = layer.executor.plans
    layer.set_mask(torch.rand(layer.weight.shape[1:]) < 0.1, 2)          # a new mask: the plans are rebuilt
    sparse(x)
    assert layer.executor.plans is not before


def test_auto_runs_dqn_on_the_kernels_with_the_masked_gradients_and_leaves_ppo_dense(tmp_path):
    """Measured (benchmarks/dqn_throughput.py, ppo_throughput.py): the kernels win for DQN's batch-32
    head and lose for PPO's batch-1 rollouts and 64-sample minibatches, so ``auto`` follows that."""
    from neuropath.training.loops.dqn import DQNTrainer
    from neuropath.training.loops.ppo import PPOTrainer

    def linear(net):
        return [m for m in masked_layers(net).values() if isinstance(m, MaskedLinear)]

    dqn = DQNTrainer(npth.Config().set({"algo": "dqn", "env": "MinAtar/Breakout-v1", "pathway": "dapd",
                                        "steps": 300, "run_dir": str(tmp_path / "d"), "progress": False}))
    assert dqn.sparse and all(m.executor is not None for n in (dqn.algo.q, dqn.algo.q_target) for m in linear(n))
    g = torch.Generator().manual_seed(0)
    for m in linear(dqn.algo.q):                 # a 5% mask, as DAPD's first scoring would give
        m.set_mask(torch.rand(m.weight.shape, generator=g) < 0.05)
    obs = torch.rand(8, *dqn.algo.obs_shape, generator=g)
    executors = [m.executor for m in linear(dqn.algo.q)]
    grads = {}
    for mode in ("sparse", "masked dense"):
        for m, ex in zip(linear(dqn.algo.q), executors):
            m.executor = ex if mode == "sparse" else None
        dqn.algo.q.zero_grad()
        dqn.algo.q(obs).square().sum().backward()
        grads[mode] = [m.weight.grad.clone() for m in linear(dqn.algo.q)]
        if mode == "sparse":
            assert all(ex.plan is not None for ex in executors)      # the kernels ran, not a fallback
    for m, gs, gd in zip(linear(dqn.algo.q), grads["sparse"], grads["masked dense"]):
        assert bool((gs[~m.mask[m.active_task]] == 0).all())          # exactly zero off the pathway
        assert torch.allclose(gs, gd, atol=1e-5, rtol=1e-4)

    ppo_cfg = {"algo": "ppo", "env": "Hopper-v5", "pathway": "dapd", "steps": 300, "progress": False}
    ppo = PPOTrainer(npth.Config().set({**ppo_cfg, "run_dir": str(tmp_path / "p")}))
    assert not ppo.sparse and all(m.executor is None for n in ppo.algo.networks.values() for m in linear(n))
    forced = PPOTrainer(npth.Config().set({**ppo_cfg, "sparse": "on", "run_dir": str(tmp_path / "q")}))
    assert forced.sparse and all(m.executor is not None for n in forced.algo.networks.values() for m in linear(n))


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_a_whole_mlp_on_the_kernels_matches_the_masked_layers(batch):
    """One autograd node per network (`MaskedMLP`'s executor): outputs, input gradients and the weight and
    bias gradients of every layer equal the masked dense layers' (empty rows and columns included), and
    the gradient of a weight outside the mask is exactly zero."""
    from neuropath.algos.common import mlp
    from neuropath.engine.sparse_exec import MLPSparseExecutor
    torch.manual_seed(batch)
    ref = mlp(17, [64, 64], 3)
    for i, layer in enumerate(masked_layers(ref).values()):
        layer.set_mask(_mask_with_empty_rows_and_cols(*layer.weight.shape, 0.1, i))
    net = mlp(17, [64, 64], 3)
    net.load_state_dict(ref.state_dict())
    enable_sparse_execution(net)
    assert isinstance(net.executor, MLPSparseExecutor)
    x = torch.randn(batch, 17)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    g = torch.randn(batch, 3)
    ya, yb = ref(xa), net(xb)
    assert yb.grad_fn is not None and type(yb.grad_fn).__name__ == "SparseMLPFunctionBackward"
    assert torch.allclose(ya, yb, atol=1e-5)
    ya.backward(g)
    yb.backward(g)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    for (name, p), q in zip(ref.named_parameters(), net.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4), name
    for layer in masked_layers(net).values():
        assert torch.all(layer.weight.grad[~layer.mask[0]] == 0)
    with torch.no_grad():                                  # forward only: no autograd node
        assert torch.allclose(net(x), ref(x), atol=1e-5)
    with unmasked(net), unmasked(ref):                     # scoring: every stored weight, the dense path
        y = net(x)
        assert type(y.grad_fn).__name__ != "SparseMLPFunctionBackward" and torch.equal(y, ref(x))
        assert not torch.allclose(y, yb.detach())          # the dense network is another function
    # a dense output layer (global top-k keeps 27-79% of SAC's small heads) leaves the network sparse
    masked_layers(net)["4"].set_mask(torch.ones(3, 64, dtype=torch.bool))
    assert type(net(xb).grad_fn).__name__ == "SparseMLPFunctionBackward"
    masked_layers(net)["2"].set_mask(torch.ones(64, 64, dtype=torch.bool))   # too dense: layer by layer
    assert type(net(xb).grad_fn).__name__ != "SparseMLPFunctionBackward"
