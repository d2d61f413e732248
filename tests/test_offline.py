"""Offline IQL on a dataset made here from a real tiny run: NPF's single-shot pathways, resume, bad input."""

import json

import pytest
import torch
import yaml

from neuropath.algos.common import Batch
from neuropath.algos.iql import IQL, IQLConfig
from neuropath.cli import main
from neuropath.training import checkpoint
from neuropath.training.logging import read_csv

from .conftest import TINY, for_offline_algo, make_hopper_replay_dataset, minari_datasets_in
from .test_train import _flags

OFF = ["--steps", "300", "--eval-every", "150", "--eval-episodes", "1", "--hidden", "32", "32",
       "--batch-size", "32", "--score-batch", "32", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    with minari_datasets_in(root / "minari"):
        yield make_hopper_replay_dataset(root / "run", _flags({**TINY, "steps": 400}), 400)


def test_expectile_and_advantage_weights_follow_the_formulas():
    torch.manual_seed(0)
    iql = IQL(3, 2, IQLConfig(hidden=[8], expectile=0.7, beta=3.0), total_steps=10)
    b = Batch(torch.randn(5, 3), torch.rand(5, 2) * 2 - 1, torch.randn(5, 1), torch.randn(5, 3), torch.ones(5, 1))
    with torch.no_grad():
        diff = torch.min(*iql.critic_target(b.obs, b.action)) - iql.value(b.obs)
        expected = torch.where(diff > 0, 0.7, 0.3) * diff.pow(2)
    assert torch.allclose(iql.value_loss(b), expected.mean())
    with torch.no_grad():
        for p in iql.critic_target.parameters():
            p.zero_()
        iql.critic_target.q1[-1].bias.fill_(1e3)
        iql.critic_target.q2[-1].bias.fill_(1e3)
        logp = iql.actor.log_prob(b.obs, b.action)
    assert torch.allclose(iql.actor_loss(b), -(100.0 * logp).mean())    # exp(β·adv) clipped at 100
    flat = IQL(3, 2, IQLConfig(hidden=[8], beta=0.0), total_steps=10)     # β = 0: every weight exp(0) = 1
    assert torch.allclose(flat.bc_loss(b), flat.actor_loss(b))


BCQ_TINY = ["--algo", "bcq", "--bcq-hidden", "32", "32", "--vae-hidden", "32", "32", "--bcq-batch-size", "32"]


@pytest.mark.parametrize("algo,nets", [("iql", ("actor", "critic", "value")), ("bcq", ("actor", "critic", "vae"))])
def test_npf_scores_once_from_the_dataset_and_keeps_the_masks_fixed(dataset, tmp_path, algo, nets):
    run = tmp_path / algo
    extra = BCQ_TINY if algo == "bcq" else ["--algo", "iql"]
    assert main(for_offline_algo(["train", "--dataset", dataset, "--pathway", "npf", *OFF, *extra, "--run-dir", str(run)])) == 0
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["150", "300"]
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["env"] == "Hopper-v5"   # the dataset's
    assert all(abs(float(r[f"{n}_density"]) - 0.05) < 0.002 for r in rows for n in nets)
    events = [json.loads(x) for x in (run / "pathway.jsonl").read_text().splitlines()]
    assert [(e["net"], e["event"]) for e in events] == [(n, "init") for n in nets]
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    for e in events:       # inputs cut off = those with no kept path: a zero column sum of the masks' product
        chains: dict[str, list[torch.Tensor]] = {}
        for key, mask in state.items():
            if key.startswith(e["net"] + ".") and key.endswith(".mask"):
                layer = key[len(e["net"]) + 1:-len(".mask")]
                chains.setdefault(layer.rpartition(".")[0], []).append(mask[0].double())
        cut = {}
        for member, chain in chains.items():
            paths = chain[0]
            for m in chain[1:]:
                paths = m @ paths
            if idx := [i for i, v in enumerate(paths.sum(0).tolist()) if v == 0]:
                cut[member] = idx
        assert e.get("cut_off", {}) == cut
    assert torch.equal(state["critic.q1.0.mask"], state["critic_target.q1.0.mask"])   # targets run the pathway
    if algo == "bcq":
        assert torch.equal(state["actor.net.0.mask"], state["actor_target.net.0.mask"])


def test_bcq_target_is_the_soft_clipped_double_q_over_decoded_next_actions():
    from neuropath.algos.bcq import BCQ, BCQConfig
    torch.manual_seed(0)
    bcq = BCQ(3, 2, BCQConfig(hidden=[8], vae_hidden=[8], next_actions=4, lmbda=0.75))
    b = Batch(torch.randn(2, 3), torch.rand(2, 2) * 2 - 1, torch.randn(2, 1), torch.randn(2, 3), torch.ones(2, 1))
    torch.manual_seed(1)
    loss = bcq.critic_loss(b)
    torch.manual_seed(1)
    with torch.no_grad():
        nxt = b.next_obs.repeat_interleave(4, 0)
        tq1, tq2 = bcq.critic_target(nxt, bcq.actor_target(nxt, bcq.vae.decode(nxt)))
        q = (0.75 * torch.min(tq1, tq2) + 0.25 * torch.max(tq1, tq2)).view(2, 4).max(1, keepdim=True).values
        y = b.reward + 0.99 * q
        q1, q2 = bcq.critic(b.obs, b.action)
    assert torch.allclose(loss, ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean())


def test_an_offline_run_resumes_where_it_stopped(dataset, tmp_path):
    run = tmp_path / "r"
    args = [a if a != "300" else "150" for a in OFF]
    assert main(for_offline_algo(["train", "--dataset", dataset, "--pathway", "npf", *args, "--run-dir", str(run)])) == 0
    masks = checkpoint.load_state(checkpoint.latest(run))["algo"]["actor.net.0.mask"]
    assert main(for_offline_algo(["train", "--resume", str(run), "--steps", "300", "--no-progress"])) == 0
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["150", "300"]
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["env"] == "Hopper-v5"   # the dataset's
    assert torch.equal(checkpoint.load_state(checkpoint.latest(run))["algo"]["actor.net.0.mask"], masks)


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "nope/none-v0", "--pathway", "npf"], "no local dataset 'nope/none-v0'"),
    (["--pathway", "npf"], "--pathway npf is the offline single-shot pathway: it needs --dataset"),
    (["--dataset", "x/y-v0", "--pathway", "dapd"], "--pathway dapd is not an offline method"),
    (["--dataset", "x/y-v0", "--pathway", "npf", "--algo", "cql"], "--algo must be one of iql, bcq"),
    (["--dataset", "x/y-v0", "--algo", "bcq", "--npf-actor-loss", "bc"], "--npf-actor-loss bc is for IQL"),
    (["--dataset", "x/y-v0", "--npf-actor-loss", "awr"], "--npf-actor-loss must be own or bc"),
])
def test_bad_offline_settings_end_in_one_line(tmp_path, capsys, args, needle):
    assert main(for_offline_algo(["train", *args, "--run-dir", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_eval_and_flops_work_on_an_offline_run_and_export_refuses_in_one_line(dataset, tmp_path, capsys):
    run = tmp_path / "e"
    args = [a if a != "300" else "50" for a in OFF]
    assert main(for_offline_algo(["train", "--dataset", dataset, "--pathway", "npf", "--algo", "iql", *args, "--run-dir", str(run)])) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert "Hopper-v5: return" in capsys.readouterr().out
    assert main(["export", str(run), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "offline (iql) run" in err and len(err.splitlines()) == 1
    assert main(["flops", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["updates"] == 50 and set(report["update"]) == {"actor", "critic", "critic_target", "value"}
    for name, v in report["parameters"].items():       # NPF keeps 5% of every network
        assert v["active"] == int(0.05 * v["total"]), name
    t = report["totals"]
    assert 0.04 < t["update_pathway"] / t["update_dense"] < 0.07
    assert t["run_pathway"] == 50 * t["update_pathway"] + report["scoring"] and report["scoring"] > 0
    assert main(["runs", str(tmp_path)]) == 0
    assert f"offline {dataset}" in capsys.readouterr().out


@pytest.mark.parametrize("tasks", [0, 3])
def test_offline_flop_counts_equal_torchs_counter_on_dense_networks(tasks):
    """The per-layer hook count of one real update and one action equals FlopCounterMode's."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from neuropath.algos.bcq import BCQ, BCQConfig
    from neuropath.efficiency.counted_flops import _nets, counting
    shape = (tasks,) if tasks else ()
    torch.manual_seed(0)
    for algo in (IQL(5, 2, IQLConfig(hidden=[8, 6]), 10, tasks=tasks),
                 BCQ(5, 2, BCQConfig(hidden=[8, 6], vae_hidden=[7]), tasks=tasks)):
        b = Batch(torch.randn(*shape, 4, 5), torch.rand(*shape, 4, 2), torch.randn(*shape, 4, 1),
                  torch.randn(*shape, 4, 5), torch.ones(*shape, 4, 1))
        twin = copy.deepcopy(algo)
        for a, use_counter in ((algo, True), (twin, False)):
            opts = a.make_optimizers()
            torch.manual_seed(1)
            if use_counter:
                with FlopCounterMode(display=False) as fc:
                    a.update(b, opts, a.make_schedulers(opts))
                    a.act(torch.ones(*shape, 5).numpy())
                expected = fc.get_total_flops()
            else:
                with counting(_nets(a)) as c:
                    a.update(b, opts, a.make_schedulers(opts))
                    a.act(torch.ones(*shape, 5).numpy())
                assert 2 * sum(v.dense for v in c.values()) == expected > 0


def test_npf_member_scope_keeps_every_member_network_connected(dataset, tmp_path, capsys):
    """`--scope member`: the VAE's encoder and decoder and the twin critic's Q1 and Q2 each keep exactly their own 5%
    (under the global ranking one of them can lose every weight of a layer: HalfCheetah's BCQ decoder did)."""
    run = tmp_path / "member"
    assert main(for_offline_algo(["train", "--dataset", dataset, "--pathway", "npf", "--scope", "member", *OFF, *BCQ_TINY,
                 "--steps", "150", "--run-dir", str(run)])) == 0
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    for member in ("vae.encoder.", "vae.decoder.", "critic.q1.", "critic.q2.", "actor."):
        masks = [v for k, v in state.items() if k.startswith(member) and k.endswith(".mask")]
        assert sum(int(m.sum()) for m in masks) == int(0.05 * sum(m.numel() for m in masks)), member
    capsys.readouterr()
    assert main(["inspect", str(run), "--no-plot"]) == 0
    shown = capsys.readouterr().out
    assert f"dataset  {dataset}" in shown and "Hopper-v5" in shown and "warning" not in shown
    assert "scope member" in shown
    ckpt = checkpoint.latest(run)                       # cut the decoder's middle layer, as the global ranking did
    state = checkpoint.load_state(ckpt)
    state["algo"]["vae.decoder.2.mask"].zero_()
    torch.save(state, ckpt / "state.pt")
    assert main(["inspect", str(run), "--no-plot"]) == 0
    assert "warning: decoder.2 keeps no weight" in capsys.readouterr().out


def test_npf_actor_loss_bc_rescores_only_the_actor(dataset, tmp_path, capsys):
    """`--npf-actor-loss bc` changes which weights IQL's actor keeps (scored without the untrained critics'
    advantage weights) and nothing else: same seed, same batches, the same critic and V pathways."""
    masks = {}
    for loss in ("own", "bc"):
        run = tmp_path / loss
        assert main(for_offline_algo(["train", "--dataset", dataset, "--algo", "iql", "--pathway", "npf", "--npf-actor-loss", loss,
                     *OFF, "--steps", "150", "--run-dir", str(run)])) == 0
        masks[loss] = {k: v for k, v in checkpoint.load_state(checkpoint.latest(run))["algo"].items()
                       if k.endswith(".mask") and "target" not in k}
    actor = [k for k in masks["own"] if k.startswith("actor.")]
    assert any(not torch.equal(masks["own"][k], masks["bc"][k]) for k in actor)
    assert all(torch.equal(masks["own"][k], masks["bc"][k]) for k in masks["own"] if k not in actor)
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "npf 0.05 actor-loss bc" in listing["bc"] and "actor-loss" not in listing["own"]



def test_a_diverging_offline_run_stops_in_one_line_and_keeps_its_last_good_checkpoint(dataset, tmp_path,
                                                                                        monkeypatch, capsys):
    from neuropath.algos.iql import IQL
    real = IQL.update

    def update(self, *a, **kw):                      # the critic turns NaN after update 200 (checkpoint at 150)
        out = real(self, *a, **kw)
        if self.updates == 200:
            with torch.no_grad():
                next(self.critic.parameters()).view(-1)[0] = float("nan")
        return out
    monkeypatch.setattr(IQL, "update", update)
    run = tmp_path / "r"
    argv = ["train", "--dataset", dataset, "--pathway", "npf", *OFF, "--checkpoint-every", "150",
            "--log-every", "50", "--run-dir", str(run)]
    assert main(for_offline_algo(argv)) == 1
    text = capsys.readouterr().err
    err = [line for line in text.strip().splitlines() if not line.startswith(("run directory:", "warning:"))]
    assert "Traceback" not in text and len(err) == 1 and "training diverged at step" in err[0], err
    assert checkpoint.latest(run).name == "ckpt-000000150" and "ckpt-000000150" in err[0]
