"""Multi-task offline BCQ/IQL on real Meta-World datasets made here (two tasks, tiny networks)."""

import pytest
import torch

from neuropath.algos.bcq import BCQ, BCQConfig
from neuropath.algos.common import Batch
from neuropath.algos.mtsac import TaskBatch
from neuropath.cli import main
from neuropath.data.metaworld_datasets import make_mt10_datasets
from neuropath.pathways.multitask import merge_task_weights, task_layers
from neuropath.training import checkpoint
from neuropath.training.config import Config
from neuropath.training.logging import read_csv

from .conftest import for_offline_algo, minari_datasets_in

TASKS = ("reach-v3", "window-close-v3")
SMALL = ["--benchmark", "MT10", "--tasks", ",".join(TASKS), "--dataset", "expert", "--steps", "40",
         "--eval-every", "20", "--eval-episodes", "1", "--hidden", "16", "16", "--bcq-hidden", "16", "16",
         "--vae-hidden", "16", "16", "--batch-size", "8", "--bcq-batch-size", "8", "--score-batch", "8",
         "--npf-batches", "2", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    with minari_datasets_in(tmp_path_factory.mktemp("mt-offline") / "minari") as root:
        make_mt10_datasets("expert", transitions=90, seed=0, episode_steps=30, tasks=TASKS)
        yield root


def _cfg(tmp_path, *extra: str) -> Config:
    from neuropath.cli import build_parser
    args = build_parser().parse_args(for_offline_algo(["train", *SMALL, *extra, "--run-dir", str(tmp_path / "run")]))
    return Config().set({k: v for k, v in vars(args).items() if k in Config.fields() and v is not None})


def test_a_batch_holds_each_tasks_own_transitions_with_its_one_hot(minari_root):
    from neuropath.training.loops.offline_multitask import TaskOfflineData
    data = TaskOfflineData(TASKS, "expert", False, None, 0)
    b = data.sample(64, torch.Generator().manual_seed(0))
    assert b.obs.shape == (2, 64, 41) and b.action.shape == (2, 64, 4) and b.reward.shape == (2, 64, 1)
    assert torch.equal(b.obs[0, :, 39:], torch.tensor([1.0, 0.0]).expand(64, 2))
    assert torch.equal(b.obs[1, :, 39:], torch.tensor([0.0, 1.0]).expand(64, 2))
    for t, part in enumerate(data.parts):       # every sampled row is a row of task t's own dataset
        rows = torch.cat([part.obs, part.action], 1)
        drawn = torch.cat([b.obs[t, :, :39], b.action[t]], 1)
        assert all((rows == r).all(1).any() for r in drawn)


def test_npf_pathways_are_exact_per_task_shared_and_weights_outside_every_pathway_never_move(minari_root, tmp_path):
    from neuropath.experiments.inspect import inspect_run
    from neuropath.training.loops.offline_multitask import MultiTaskOfflineTrainer
    trainer = MultiTaskOfflineTrainer(_cfg(tmp_path, "--algo", "bcq", "--pathway", "npf"))
    trainer._init_pathways()
    for name, net in trainer.algo.networks.items():
        layers = task_layers(net).values()
        total = sum(m.mask[0].numel() for m in layers)
        for t in range(2):
            assert sum(int(m.mask[t].sum()) for m in layers) == int(0.05 * total)     # exactly k per task
        assert any(not torch.equal(m.mask[0], m.mask[1]) for m in layers)           # a pathway per task
    before = {n: m.weight.detach().clone() for n, m in task_layers(trainer.algo.actor).items()}
    trainer.train()
    for n, m in task_layers(trainer.algo.actor).items():
        assert torch.equal(m.weight[0], m.weight[1])                                 # one shared weight
        outside = ~(m.mask[0] | m.mask[1])
        assert torch.equal(m.weight[0][outside], before[n][0][outside])              # no task reached them
        assert not torch.equal(m.weight[0][~outside], before[n][0][~outside])        # the pathways trained
    target = task_layers(trainer.algo.critic_target)
    for n, m in task_layers(trainer.algo.critic).items():
        assert torch.equal(target[n].mask, m.mask)                                   # targets follow the masks
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == ["20", "40"]
    assert {"success_reach_v3", "success_window_close_v3"} <= set(rows[0])
    shown = inspect_run(tmp_path / "run")
    assert all(f"## {net}: parameters per task" in shown for net in ("actor", "critic", "vae"))
    assert abs(float(rows[-1]["actor_density"]) - 0.05) < 0.01


def test_overlapping_pathways_average_their_tasks_gradients_in_bcq():
    from neuropath.pathways.multitask import average_task_grads
    torch.manual_seed(0)
    bcq = BCQ(5, 2, BCQConfig(hidden=[4], vae_hidden=[4]), tasks=2)
    layer = task_layers(bcq.actor)["net.0"]
    layer.set_mask(torch.rand(4, 7) < 0.5, 0)
    layer.set_mask(torch.rand(4, 7) < 0.5, 1)
    merge_task_weights(bcq.actor)
    b = TaskBatch(torch.randn(2, 6, 5), torch.rand(2, 6, 2) * 2 - 1, torch.randn(2, 6, 1), torch.randn(2, 6, 5),
                  torch.ones(2, 6, 1))
    torch.manual_seed(5)
    g = torch.autograd.grad(bcq.actor_loss(b), layer.weight)[0]          # slice t: task t's m_t ⊙ g_t
    assert not torch.equal(g[0], g[1])
    m = layer.mask.float()
    expected = (m * g).sum(0) / m.sum(0).clamp(min=1)
    torch.manual_seed(5)
    bcq.actor_loss(b).backward()
    average_task_grads(bcq.actor)
    assert torch.allclose(layer.weight.grad[0], expected) and torch.allclose(layer.weight.grad[1], expected)
    bcq.update(b, bcq.make_optimizers())                                  # the update averages too:
    assert torch.equal(layer.weight[0], layer.weight[1])                 # the slices stay one weight


def test_single_task_losses_are_unchanged_by_the_task_dimension():
    """The same BCQ weights give the same losses on [B, ...] and on a one-task [1, B, ...] batch."""
    from neuropath.pathways import MaskedLinear
    torch.manual_seed(0)
    single = BCQ(5, 2, BCQConfig(hidden=[8], vae_hidden=[8]))
    multi = BCQ(5, 2, BCQConfig(hidden=[8], vae_hidden=[8]), tasks=1)
    plain = [m for m in single.modules() if isinstance(m, MaskedLinear)]
    tasked = [m for m in multi.modules() if m.__class__.__name__ == "TaskLinear"]
    assert len(plain) == len(tasked) > 0
    with torch.no_grad():
        for a, t in zip(plain, tasked):
            t.weight[0].copy_(a.weight)
            t.bias[0].copy_(a.bias)
    b = Batch(torch.randn(6, 5), torch.rand(6, 2) * 2 - 1, torch.randn(6, 1), torch.randn(6, 5), torch.ones(6, 1))
    tb = TaskBatch(*(x.unsqueeze(0) for x in b[:5]))
    for name in ("vae", "critic", "actor"):
        torch.manual_seed(1)
        a = single.losses()[name](b)
        torch.manual_seed(1)
        c = multi.losses()[name](tb)
        assert torch.allclose(a, c, atol=1e-5), name
    torch.manual_seed(2)
    x = torch.randn(5).numpy()
    torch.manual_seed(3)
    a = single.act(x)
    torch.manual_seed(3)
    c = multi.act(x[None])
    assert c.shape == (1, 2) and torch.allclose(torch.as_tensor(a), torch.as_tensor(c[0]), atol=1e-5)


@pytest.mark.parametrize("algo", ["bcq", "iql"])
def test_mt_and_mhmt_baselines_train_and_resume(minari_root, tmp_path, capsys, algo):
    run = tmp_path / "mhmt"
    args = [*SMALL, "--algo", algo, "--pathway", "dense", "--heads", "per-task", "--checkpoint-every", "20"]
    assert main(for_offline_algo(["train", *args, "--steps", "20", "--run-dir", str(run)])) == 0
    assert main(for_offline_algo(["train", "--resume", str(run), "--steps", "40", "--no-progress"])) == 0
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["20", "40"] and float(rows[0]["actor_density"]) == 1.0
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    trunk, head = state["actor.net.0.weight"], state["actor.net.4.weight"]
    assert torch.equal(trunk[0], trunk[1]) and not torch.equal(head[0], head[1])     # shared trunk, own heads
    assert main(["flops", str(run)]) == 0                                            # dense: ratio 1
    assert "per task over 2 tasks" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "medium"], "no local dataset 'neuropath/mt10/reach-medium-v0' (2 of 2 tasks missing)"),
    (["--dataset", "expertt"], "with --benchmark, --dataset is a dataset kind"),
    (["--dataset", "expert", "--transitions", "100000"], "is more than dataset"),
    (["--dataset", "expert", "--pathway", "dapd"], "--pathway dapd is not available with --benchmark and --dataset"),
])
def test_bad_multitask_offline_input_ends_in_one_line(minari_root, tmp_path, capsys, args, needle):
    base = [a for a in SMALL if a not in ("--dataset", "expert")]
    assert main(for_offline_algo(["train", *base, *args, "--run-dir", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_npf_with_a_data_free_score_gives_each_task_the_same_exact_pathway(minari_root, tmp_path):
    """SynFlow never reads the data and the task copies start equal: every task gets one and the same
    pathway, exactly k weights, unlike SNIP's per-task pathways above."""
    from neuropath.training.loops.offline_multitask import MultiTaskOfflineTrainer
    trainer = MultiTaskOfflineTrainer(_cfg(tmp_path, "--algo", "iql", "--pathway", "npf", "--score", "synflow",
                                           "--synflow-rounds", "3"))
    trainer._init_pathways()
    for net in trainer.algo.networks.values():
        layers = task_layers(net).values()
        total = sum(m.mask[0].numel() for m in layers)
        assert [sum(int(m.mask[t].sum()) for m in layers) for t in range(2)] == [int(0.05 * total)] * 2
        assert all(torch.equal(m.mask[0], m.mask[1]) for m in layers)


def test_sparse_kernels_for_task_layers_only_when_asked(tmp_path):
    """`--sparse on` puts the per-task pathways on the sparse kernels; `auto` keeps the batched dense bmm,
    measured faster for multi-task layers on this CPU (the kernels' equality: test_sparse_exec.py)."""
    from neuropath.training.build import wants_sparse
    for mode, pathway, expected in (("on", "npf", True), ("auto", "npf", False), ("on", "dense", False)):
        cfg = _cfg(tmp_path, "--algo", "iql", "--pathway", pathway, "--sparse", mode)    # the rule alone
        assert wants_sparse(cfg, torch.device("cpu"), [0.05]) == expected
