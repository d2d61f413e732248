"""The fused SAC update (`engine/fused_sac.py`): what `SAC.update` computes, over the pathway's entries
only, with the skipped work on the other entries replayed by `sync()`."""

import copy

import pytest
import torch

import neuropath as npth
from neuropath.algos.common import Batch
from neuropath.algos.sac import SAC, SACConfig
from neuropath.engine.fused_sac import FusedSACUpdate
from neuropath.pathways import unmasked
from neuropath.pathways.masks import copy_masks, masked_layers
from neuropath.pathways.optim import OwnAgeBiasCorrection
from neuropath.training.logging import read_csv

from .conftest import TINY

OBS, ACT = 11, 3


def _masks(sac: SAC, density: float, seed: int) -> None:
    """Random masks with an output unit of no inputs and an input no weight reads, in every layer."""
    g = torch.Generator().manual_seed(seed)
    for net in (sac.actor, sac.critic):
        for layer in masked_layers(net).values():
            m = torch.rand(layer.weight.shape, generator=g) < density
            if m.shape[0] > 2:
                m[1] = False
            m[:, 2] = False
            layer.set_mask(m)
    copy_masks(sac.critic, sac.critic_target)


def _pair(cfg: SACConfig, density: float = 0.15):
    torch.manual_seed(0)
    a = SAC(OBS, ACT, cfg)
    _masks(a, density, 1)
    b = copy.deepcopy(a)
    return a, a.make_optimizers(), b, b.make_optimizers()


def _batch(g: torch.Generator, n: int, nstep: bool = False) -> Batch:
    extra = {"discount": torch.full((n, 1), 0.97)} if nstep else {}
    return Batch(torch.randn(n, OBS, generator=g), torch.rand(n, ACT, generator=g) * 2 - 1,
                 torch.randn(n, 1, generator=g), torch.randn(n, OBS, generator=g),
                 (torch.rand(n, 1, generator=g) > 0.1).float(), **extra)


def _assert_same_state(a: SAC, oa: dict, b: SAC, ob: dict, atol: float = 1e-5) -> None:
    """Every parameter (every entry: inside the pathway and outside it), the target critic, and every
    Adam moment and step count agree to float rounding."""
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=atol, msg=name)
    for (name, p), q in zip(a.critic_target.named_parameters(), b.critic_target.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=atol, msg="target " + name)
    for k in ("actor", "critic", "alpha"):
        for p, q in zip(oa[k].param_groups[0]["params"], ob[k].param_groups[0]["params"]):
            sa, sb = oa[k].state[p], ob[k].state[q]
            assert float(sa["step"]) == float(sb["step"]), k
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(sa[key], sb[key], rtol=1e-4, atol=1e-6, msg=f"{k} {key}")


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_fused_update_is_the_sac_update(batch):
    """Same losses, weights, target, moments and step counts as `SAC.update` on the masked networks, to float
    rounding, at batch 1, 7 and 256, with empty rows and columns and the actor and target on their own cadence
    (every 2nd update); and a masked weight's value never moves."""
    cfg = SACConfig(hidden=[32, 32], actor_every=2, target_every=2)
    a, oa, b, ob = _pair(cfg)
    engine = FusedSACUpdate(a, oa)
    w0 = {n: p.detach().clone() for n, p in a.named_parameters()}
    g = torch.Generator().manual_seed(3)
    for i in range(12):
        bt = _batch(g, batch)
        torch.manual_seed(100 + i)                       # the same policy noise in both
        got = engine.update(bt)
        torch.manual_seed(100 + i)
        want = b.update(bt, ob)
        assert got is not None and set(got) == set(want)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=k)
    assert engine.calls == 12 and a.updates == b.updates == 12
    engine.sync()
    _assert_same_state(a, oa, b, ob)
    for net in (a.actor, a.critic):                     # outside the pathway nothing moved (zero moments)
        for name, layer in masked_layers(net).items():
            key = next(n for n, p in a.named_parameters() if p is layer.weight)
            assert torch.equal(layer.weight[~layer.mask[0]], w0[key][~layer.mask[0]]), key
            assert not torch.equal(layer.weight[layer.mask[0]], w0[key][layer.mask[0]]), key


def test_sync_replays_what_the_skipped_entries_would_have_done():
    """Entries that left the pathway with their Adam moments kept (``--adam-on-change keep``) keep drifting
    under torch's Adam, and the target critic's copies keep moving towards the critic's: after `sync` every
    entry, inside the pathway and outside it, equals what the dense-state update gives."""
    cfg = SACConfig(hidden=[32, 32])
    a, oa, b, ob = _pair(cfg)
    g = torch.Generator().manual_seed(4)
    for i in range(5):                                   # moments everywhere in the first pathway
        bt = _batch(g, 16)
        torch.manual_seed(i)
        a.update(bt, oa)
        torch.manual_seed(i)
        b.update(bt, ob)
    _masks(a, 0.15, 2)                                   # a new pathway; moments kept
    _masks(b, 0.15, 2)
    left = ~masked_layers(a.critic)["q1.2"].mask[0] & (oa["critic"].state[a.critic.q1[2].weight]["exp_avg"] != 0)
    assert left.sum() >= 5                               # entries outside the pathway whose moments move them
    engine = FusedSACUpdate(a, oa)
    for i in range(9):
        bt = _batch(g, 16)
        torch.manual_seed(50 + i)
        assert engine.update(bt) is not None
        torch.manual_seed(50 + i)
        b.update(bt, ob)
    before = a.critic.q1[2].weight.detach().clone()
    engine.sync()
    assert not torch.equal(before[left], a.critic.q1[2].weight[left])     # the drift was replayed
    _assert_same_state(a, oa, b, ob)
    engine.sync()                                        # a second sync has nothing left to replay
    _assert_same_state(a, oa, b, ob)


def test_the_fused_update_declines_what_it_does_not_compute():
    """n-step batches (RLx2), a step hook (own-age entry rule), unmasked scoring, dense networks and too dense
    pathways go to `SAC.update`: `update` returns None and changes nothing."""
    g = torch.Generator().manual_seed(5)
    a, oa, _, _ = _pair(SACConfig(hidden=[32, 32]))
    engine = FusedSACUpdate(a, oa)
    assert engine.update(_batch(g, 8, nstep=True)) is None
    with unmasked(a):
        assert engine.update(_batch(g, 8)) is None
    hook = OwnAgeBiasCorrection(oa["critic"], [layer.weight for layer in masked_layers(a.critic).values()])
    assert engine.update(_batch(g, 8)) is None
    hook.handle.remove()
    assert engine.update(_batch(g, 8)) is not None
    dense = SAC(OBS, ACT, SACConfig(hidden=[32, 32]))
    assert FusedSACUpdate(dense, dense.make_optimizers()).update(_batch(g, 8)) is None
    thick, ot, _, _ = _pair(SACConfig(hidden=[32, 32]), density=0.6)
    assert FusedSACUpdate(thick, ot).update(_batch(g, 8)) is None
    assert a.updates == 1 and thick.updates == 0 and engine.calls == 1


def test_a_sparse_run_trains_on_the_fused_update_and_resumes_exactly(tmp_path):
    """A real DAPD run (Hopper: mask updates at episode ends, evaluations, checkpoints) takes its updates on
    the fused engine and its actions on `SparseActing`, and a run killed between checkpoints and resumed continues the same curve and ends
    with the same weights, bit for bit (tests/test_train.py checks the other methods the same way)."""
    cfg = {**TINY, "pathway": "dapd", "steps": 500, "eval_every": 100, "checkpoint_every": 200}
    whole = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "whole")}))
    whole.train()
    assert whole.fused is not None and whole.fused.calls == whole.algo.updates > 300
    assert whole.algo.act_executor.calls > 500            # training and evaluation acted on the kernels
    cut = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "cut")}))

    class Killed(Exception):
        pass

    def kill(step, info):
        if step == 330:
            raise Killed
    with pytest.raises(Killed):
        cut.train(callback=kill)
    resumed = npth.Trainer.resume(tmp_path / "cut")
    resumed.train()
    assert resumed.fused.calls > 0
    rows = [(r["step"], r["return_mean"]) for r in read_csv(tmp_path / "whole" / "metrics.csv")]
    assert rows == [(r["step"], r["return_mean"]) for r in read_csv(tmp_path / "cut" / "metrics.csv")]
    for (k, v), (_, w) in zip(whole.algo.state_dict().items(), resumed.algo.state_dict().items()):
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, w), k


def test_sparse_acting_is_sac_act_and_draws_the_same_noise():
    """One action through `SparseActing` equals `SAC.act` through torch's masked layers (deterministic and
    sampled, to float rounding), leaves torch's random stream where torch's path leaves it, follows a mask
    change and an in-place weight change, and declines batches, dense masks and ``unmasked()``."""
    from neuropath.engine.sparse_act import SparseActing
    from neuropath.engine.sparse_exec import enable_sparse_execution

    a, _, b, _ = _pair(SACConfig(hidden=[32, 32]))
    enable_sparse_execution(a.actor)
    fast = SparseActing(a.actor)
    a.act_executor = fast
    g = torch.Generator().manual_seed(6)
    for i in range(6):
        obs = torch.randn(OBS, generator=g).double().numpy()     # as environments give them
        if i == 3:                                              # a new pathway and moved weights
            _masks(a, 0.15, 9)
            _masks(b, 0.15, 9)
            with torch.no_grad():
                for p, q in zip(a.actor.parameters(), b.actor.parameters()):
                    p.add_(0.1)
                    q.add_(0.1)
        for det in (True, False):
            torch.manual_seed(i)
            got = a.act(obs, deterministic=det)
            after_fast = torch.rand(1)
            torch.manual_seed(i)
            want = b.act(obs, deterministic=det)
            after_torch = torch.rand(1)
            assert got.dtype == want.dtype and got.shape == want.shape == (ACT,)
            torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1e-5, atol=1e-6)
            assert torch.equal(after_fast, after_torch)
    assert fast.calls == 12
    assert fast(torch.randn(4, OBS).numpy(), True) is None                    # a batch: torch's path
    with unmasked(a):
        assert fast(torch.randn(OBS).numpy(), True) is None
    _masks(a, 0.6, 3)
    assert fast(torch.randn(OBS).numpy(), True) is None                       # too dense to run sparse
    assert fast.calls == 12


def test_threads_auto_is_one_on_the_sparse_kernels(tmp_path):
    """``--threads 0`` (auto) gives a sparse SAC run one torch thread (its kernels are single-threaded; the quick
    start used ~5x the CPU on 2 cores with torch's default) and leaves a dense run torch's default."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        base = {**TINY, "threads": 0, "steps": 200}
        npth.Trainer(npth.Config().set({**base, "pathway": "dense", "run_dir": str(tmp_path / "d")}))
        assert torch.get_num_threads() == 2
        sparse = npth.Trainer(npth.Config().set({**base, "pathway": "dapd", "run_dir": str(tmp_path / "s")}))
        assert sparse.sparse and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
