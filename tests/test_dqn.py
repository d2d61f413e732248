"""DQN's networks and loss: the TD target, masked convolutions and fully connected layers, the target copy."""

import numpy as np
import pytest
import torch

from neuropath.algos.dqn import DQN, DQNBatch, DQNConfig, QNetwork, linear_epsilon
from neuropath.pathways import MaskedConv2d, masked_layers, snip_scores, topk_masks


def _batch(shape, n_actions, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DQNBatch(torch.rand(b, *shape, generator=g), torch.randint(0, n_actions, (b,), generator=g),
                    torch.randn(b, generator=g), torch.rand(b, *shape, generator=g),
                    torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]))


def test_td_loss_is_the_huber_error_against_the_target_networks_max():
    torch.manual_seed(0)
    dqn = DQN((4, 10, 10), 3, DQNConfig(gamma=0.9), torso="minatar")
    with torch.no_grad():
        for p in dqn.q_target.parameters():
            p.add_(0.1 * torch.randn_like(p))            # target ≠ online, so the test sees which one is used
    b = _batch((4, 10, 10), 3)
    with torch.no_grad():
        target = b.reward + 0.9 * b.not_done * dqn.q_target(b.next_obs).max(1).values
        q = dqn.q(b.obs)[torch.arange(6), b.action]
        err = (q - target).abs()
        expected = torch.where(err < 1, 0.5 * err ** 2, err - 0.5).mean()
    assert torch.allclose(dqn.td_loss(b), expected, atol=1e-6)


def test_masked_conv_and_linear_weights_get_exactly_zero_gradient_and_keep_their_values():
    torch.manual_seed(0)
    dqn = DQN((4, 10, 10), 3, DQNConfig(target_every=2), torso="minatar", mask_conv=True)
    layers = masked_layers(dqn.q)
    assert [type(m) for m in layers.values()][0] is MaskedConv2d and len(layers) == 3
    b = _batch((4, 10, 10), 3)
    masks = topk_masks(snip_scores(dqn.q, lambda: dqn.td_loss(b)), 0.05)
    assert sum(int(m.sum()) for m in masks.values()) == int(0.05 * sum(m.weight.numel() for m in layers.values()))
    for name, m in layers.items():
        m.set_mask(masks[name])
    before = {n: m.weight.detach().clone() for n, m in layers.items()}
    opts = dqn.make_optimizers()
    for i in range(3):
        dqn.update(_batch((4, 10, 10), 3, seed=i), opts)
        for n, m in layers.items():
            assert bool((m.weight.grad[~m.mask[0]] == 0).all()), n
    for n, m in layers.items():
        assert torch.equal(m.weight[~m.mask[0]], before[n][~m.mask[0]])
        assert not torch.equal(m.weight[m.mask[0]], before[n][m.mask[0]])
    target = masked_layers(dqn.q_target)                      # synced after update 2: weights and masks
    assert all(torch.equal(target[n].mask, m.mask) for n, m in layers.items())


def test_the_nature_network_has_its_published_shape_and_convs_stay_dense_by_default():
    q = QNetwork((4, 84, 84), 6)
    assert q.head[0].in_features == 3136 and q.head[0].out_features == 512
    assert list(masked_layers(q)) == ["head.0", "head.2"]
    assert q(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 6)


def test_epsilon_decays_linearly_then_stays_and_greedy_acts_by_argmax():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert abs(linear_epsilon(50, 1.0, 0.1, 100) - 0.55) < 1e-12
    assert linear_epsilon(500, 1.0, 0.1, 100) == 0.1
    torch.manual_seed(0)
    dqn = DQN((4, 10, 10), 3, DQNConfig(), torso="minatar")
    x = np.random.default_rng(0).random((4, 10, 10)).astype(np.float32)
    with torch.no_grad():
        assert dqn.act(x) == int(dqn.q(torch.as_tensor(x)[None]).argmax())
    rng = np.random.default_rng(1)
    assert len({dqn.act(x, 1.0, rng) for _ in range(50)}) == 3         # ε = 1: uniform over actions


TINY = ["--algo", "dqn", "--env", "MinAtar/Breakout-v1", "--steps", "600", "--seed-steps", "200", "--train-every", "1",
        "--eval-every", "300", "--eval-episodes", "1", "--init-steps", "100", "--score-batch", "32", "--window", "300",
        "--eps-decay-steps", "400", "--dqn-target-every", "50", "--no-progress", "--threads", "1"]


def test_dapd_dqn_on_minatar_scores_updates_freezes_resumes_and_evaluates(tmp_path, capsys):
    import json

    from neuropath.cli import main
    from neuropath.training import checkpoint
    from neuropath.training.logging import read_csv
    run = tmp_path / "dqn"
    assert main(["train", *TINY, "--pathway", "dapd", "--freeze-step", "400", "--checkpoint-every", "300",
                 "--run-dir", str(run)]) == 0
    events = [json.loads(x) for x in (run / "pathway.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "init" and any(e["event"] == "update" for e in events)
    assert [e["frozen_at"] for e in events if e["event"] == "freeze"] == [400]
    state = checkpoint.load_state(checkpoint.latest(run))
    algo = state["algo"]
    kept = sum(int(algo[f"q.head.{i}.mask"].sum()) for i in (0, 2))
    total = sum(algo[f"q.head.{i}.mask"].numel() for i in (0, 2))
    assert kept == int(0.05 * total) and state["algo_updates"] >= 399          # updates after step 200
    assert torch.equal(algo["q.head.0.mask"], algo["q_target.head.0.mask"])   # the target follows
    assert main(["train", "--resume", str(run), "--steps", "900", "--no-progress"]) == 0
    assert [r["step"] for r in read_csv(run / "metrics.csv")] == ["300", "600", "900"]
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "MinAtar/Breakout-v1: return" in capsys.readouterr().out

    # export: the dense convolution and the sparse head give the run's own greedy actions, without torch
    from neuropath.efficiency import compact_policy
    from neuropath.policy import load_policy
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    cp, policy = compact_policy.load(tmp_path / "exported"), load_policy(run)
    obs = (np.random.default_rng(0).random((64, 4, 10, 10)) < 0.2).astype(np.float32)
    assert [policy.act_unit(o) for o in obs] == list(cp.act_unit(obs)) == [cp.predict(o, deterministic=True)[0] for o in obs]
    assert cp.meta["conv_layers"] == 1 and sum(cp.meta["nnz_after"]) <= kept
    capsys.readouterr()
    assert main(["flops", str(run), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["algo"] == "dqn" and r["steps"] == 900 and r["scoring"]["q"] > 0
    assert r["update"]["pathway"] < r["update"]["dense"]          # the sparse head, the dense convolution
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # e.g. an empty legend on a q-only run
        assert main(["inspect", str(run), "--plot", str(tmp_path / "p.png")]) == 0
    said = capsys.readouterr().out
    assert "q: " in said and "freeze" in said and (tmp_path / "p.png").stat().st_size > 0
    assert "q_target" not in said and "not frozen" not in said     # the target copy is no second pathway


def test_image_replay_keeps_the_newest_transitions_across_a_capacity_change(tmp_path):
    from neuropath.data.image_replay import ImageReplay
    small = ImageReplay((1, 2, 2), 4)
    for i in range(6):                                       # wraps: holds 2, 3, 4, 5
        small.add(np.full((1, 2, 2), i, np.uint8), i, float(i), np.full((1, 2, 2), i + 1, np.uint8), i == 5)
    small.save(tmp_path / "r.npy")
    big = ImageReplay((1, 2, 2), 10)
    big.load(tmp_path / "r.npy")
    assert len(big) == 4 and list(big.action[:4]) == [2, 3, 4, 5] and big.ptr == 4
    assert list(big.not_done[:4]) == [1.0, 1.0, 1.0, 0.0]
    recent = big.sample_recent(50, 2)
    assert set(recent.action.tolist()) == {4, 5}


@pytest.mark.parametrize("env,needle", [
    ("HalfCheetah-v5", "--algo dqn needs discrete actions; 'HalfCheetah-v5' has Box"),
    ("CartPol-v1", "unknown environment 'CartPol-v1'; did you mean CartPole-v1"),
    ("MinAtar/Brekout-v1", "unknown MinAtar game 'MinAtar/Brekout-v1'; did you mean MinAtar/Breakout-v1?"),
    ("ALE/Pongg-v5", "ale-py ships no Atari game 'ALE/Pongg-v5'; did you mean ALE/Pong-v5?"),
])
def test_bad_dqn_environments_end_in_one_line(tmp_path, capsys, env, needle):
    from neuropath.cli import main
    assert main(["train", "--algo", "dqn", "--env", env, "--steps", "10", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_atari_dqn_runs_through_learning_start_and_a_mask_update_on_the_nature_network(tmp_path):
    import json

    from neuropath.cli import main
    from neuropath.training import checkpoint
    run = tmp_path / "atari"
    assert main(["train", "--algo", "dqn", "--env", "ALE/Breakout-v5", "--pathway", "dapd", "--steps", "300",
                 "--seed-steps", "100", "--replay-size", "400", "--init-steps", "50", "--score-batch", "8",
                 "--window", "200", "--eval-every", "300", "--eval-episodes", "1", "--no-progress", "--threads", "1",
                 "--run-dir", str(run)]) == 0
    state = checkpoint.load_state(checkpoint.latest(run))
    assert state["algo_updates"] == (300 - 100) // 4                          # one update per 4 steps
    algo = state["algo"]
    assert algo["q.head.0.weight"].shape == (512, 3136) and "q.conv.0.mask" not in algo   # convs dense
    kept = sum(int(algo[f"q.head.{i}.mask"].sum()) for i in (0, 2))
    assert kept == int(0.05 * sum(algo[f"q.head.{i}.mask"].numel() for i in (0, 2)))
    events = [json.loads(x)["event"] for x in (run / "pathway.jsonl").read_text().splitlines()]
    assert events[0] == "init" and "update" in events                        # a game ended in warm-up
    from neuropath.efficiency import compact_policy
    from neuropath.policy import load_policy
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0        # three strided convolutions
    cp, policy = compact_policy.load(tmp_path / "exported"), load_policy(run)
    frames = np.random.default_rng(0).integers(0, 256, (6, 4, 84, 84), dtype=np.uint8)
    assert [policy.act_unit(f) for f in frames] == list(cp.act_unit(frames))


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_set_and_rigl_dqn_drop_and_grow_every_interval_and_keep_inactive_weights_at_zero(tmp_path, method):
    import json

    from neuropath.cli import main
    from neuropath.training import checkpoint
    run = tmp_path / method
    assert main(["train", *TINY, "--pathway", method, "--update-every", "100", "--checkpoint-every", "600",
                 "--run-dir", str(run)]) == 0
    events = [json.loads(x) for x in (run / "pathway.jsonl").read_text().splitlines()]
    updates = [e for e in events if e["event"] == "update"]
    # ΔT 100 from learning start (200) to 80% of 600 steps: drop/grow at 200, 300, 400
    assert [e["step"] for e in updates] == [200, 300, 400] and all(e["changed"] > 0 for e in updates)
    algo = checkpoint.load_state(checkpoint.latest(run))["algo"]
    for i in (0, 2):
        w, m = algo[f"q.head.{i}.weight"], algo[f"q.head.{i}.mask"][0]
        assert bool((w[~m] == 0).all())                          # sparse training: inactive weights are zero
        assert torch.equal(algo[f"q_target.head.{i}.mask"], algo[f"q.head.{i}.mask"])
    total = sum(algo[f"q.head.{i}.mask"].numel() for i in (0, 2))
    assert abs(sum(int(algo[f"q.head.{i}.mask"].sum()) for i in (0, 2)) - 0.05 * total) <= 2


CARTPOLE = ["--algo", "dqn", "--env", "CartPole-v1", "--steps", "600", "--seed-steps", "200", "--train-every", "1",
            "--eval-every", "300", "--eval-episodes", "2", "--init-steps", "100", "--score-batch", "32",
            "--window", "300", "--dqn-target-every", "50", "--no-progress", "--threads", "1"]


def test_dapd_dqn_on_cartpole_masks_the_whole_mlp_resumes_exactly_and_exports(tmp_path, capsys):
    """CleanRL's DQN starts on CartPole: an MLP Q-network (--dqn-hidden) on float observations, all of its
    layers a pathway; a cut run continues the uninterrupted one's curve; the export acts as the run."""
    from neuropath.cli import main
    from neuropath.training import checkpoint
    from neuropath.training.logging import read_csv
    from neuropath.training.config import Config
    from neuropath.training.loops.dqn import DQNTrainer
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    flags = [*CARTPOLE, "--pathway", "dapd", "--dqn-hidden", "32", "16", "--checkpoint-every", "200",
             "--eval-every", "150"]
    assert main(["train", *flags, "--run-dir", str(whole)]) == 0
    state = checkpoint.load_state(checkpoint.latest(whole))
    algo = state["algo"]
    assert algo["q.head.0.weight"].shape == (32, 4) and algo["q.head.4.weight"].shape == (2, 16)
    masks = [algo[f"q.head.{i}.mask"] for i in (0, 2, 4)]
    assert sum(int(m.sum()) for m in masks) == int(0.05 * sum(m.numel() for m in masks))
    assert state["algo_updates"] == 600 - 200

    class Killed(Exception):
        pass

    class KilledAt300(DQNTrainer):                       # killed between the checkpoints after 200 and 400
        def evaluate(self):
            row = super().evaluate()
            if self.step == 300:
                raise Killed
            return row
    cfg = Config().set({"algo": "dqn", "env": "CartPole-v1", "steps": 600, "seed_steps": 200, "train_every": 1,
                        "eval_every": 150, "eval_episodes": 2, "init_steps": 100, "score_batch": 32, "window": 300,
                        "dqn_target_every": 50, "progress": False, "threads": 1, "pathway": "dapd",
                        "dqn_hidden": [32, 16], "checkpoint_every": 200, "run_dir": str(cut)})
    with pytest.raises(Killed):
        KilledAt300(cfg).train()
    assert 200 <= checkpoint.read_meta(checkpoint.latest(cut))["step"] < 300
    assert main(["train", "--resume", str(cut), "--no-progress"]) == 0
    rows = lambda d: [(r["step"], r["return_mean"]) for r in read_csv(d / "metrics.csv")]  # noqa: E731
    assert rows(cut) == rows(whole)
    end_w, end_c = (checkpoint.load_state(checkpoint.latest(d))["algo"] for d in (whole, cut))
    assert all(torch.equal(end_w[k], end_c[k]) for k in end_w if isinstance(end_w[k], torch.Tensor))

    from neuropath.efficiency import compact_policy
    from neuropath.policy import load_policy
    assert main(["export", str(whole), str(tmp_path / "exported")]) == 0
    cp, policy = compact_policy.load(tmp_path / "exported"), load_policy(whole)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    assert [policy.act_unit(o) for o in obs] == list(cp.act_unit(obs))
    capsys.readouterr()
    assert main(["eval", str(whole), "--episodes", "2"]) == 0
    assert "CartPole-v1: return" in capsys.readouterr().out
    assert main(["flops", str(whole)]) == 0


@pytest.mark.parametrize("flags,needle", [
    (["--env", "CartPole-v1", "--hidden", "32"], "--hidden is not read by --algo dqn; DQN reads --dqn-hidden"),
    (["--env", "MinAtar/Breakout-v1", "--dqn-hidden", "32"],
     "--dqn-hidden is read by --algo dqn only on vector observations (e.g. CartPole-v1), not on MinAtar/Breakout-v1"),
    (["--env", "CartPole-v1", "--mask-conv"], "--mask-conv is read by --algo dqn only on MinAtar/Atari games"),
    (["--env", "CartPole-v1", "--dqn-hidden", "0"], "--dqn-hidden needs one or more positive widths"),
])
def test_dqn_network_flags_of_the_other_observation_kind_are_refused_in_one_line(tmp_path, capsys, flags, needle):
    from neuropath.cli import main
    assert main(["train", "--algo", "dqn", *flags, "--steps", "10", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_every_run_kind_predicts_with_sb3s_signature_and_default(tmp_path):
    """One convention, SB3's: ``predict(obs)`` samples (DQN: ε-greedy with --eval-epsilon), ``deterministic=True``
    is the greedy action; the exported policy keeps only that, so it refuses the default in one error."""
    from neuropath.cli import main
    from neuropath.efficiency import compact_policy
    from neuropath.policy import load_policy
    run = tmp_path / "cart"
    assert main(["train", *CARTPOLE, "--pathway", "static", "--steps", "300", "--eval-epsilon", "1.0",
                 "--run-dir", str(run)]) == 0
    policy = load_policy(run)
    obs = np.zeros(4, np.float32)
    greedy = policy.predict(obs, deterministic=True)
    assert greedy == (policy.act_unit(obs), None) and greedy[0] in (0, 1)
    assert {policy.predict(obs)[0] for _ in range(40)} == {0, 1}          # ε = 1: both actions
    assert main(["export", str(run), str(tmp_path / "out")]) == 0
    cp = compact_policy.load(tmp_path / "out")
    assert cp.predict(obs, deterministic=True)[0] == greedy[0]
    with pytest.raises(ValueError, match="deterministic=True"):
        cp.predict(obs)


def test_every_loop_resumes_through_one_path_a_smaller_budget_refused_a_device_kept(tmp_path, capsys):
    """`resume_settings` for DQN as for SAC: --steps below the reached step is one line; --device is read."""
    from neuropath.cli import main
    from neuropath.training.logging import read_csv
    run = tmp_path / "r"
    assert main(["train", *CARTPOLE, "--pathway", "dense", "--steps", "300", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "200", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neuropath: error: the run is already at step 300; --steps must be at least that"]
    assert main(["train", "--resume", str(run), "--steps", "600", "--device", "cpu", "--no-progress"]) == 0
    assert [r["step"] for r in read_csv(run / "metrics.csv")] == ["300", "600"]


def test_dqn_flops_price_each_update_and_action_at_the_masks_of_its_step(tmp_path):
    import shutil

    from neuropath.cli import main
    from neuropath.efficiency.counted_flops import dqn_flops_of_run
    run, early = tmp_path / "r", tmp_path / "early"
    args = [a if a != "600" else "400" for a in TINY]
    args[args.index("--train-every") + 1] = "2"
    assert main(["train", *args, "--pathway", "dapd", "--mask-conv", "--freeze-step", "300",
                 "--run-dir", str(run)]) == 0
    shutil.copytree(run, early)
    assert main(["train", "--resume", str(run), "--steps", "500", "--no-progress"]) == 0
    a, b = dqn_flops_of_run(early), dqn_flops_of_run(run)
    assert a.notes == [] and b.notes == []          # the loop's update rule gives the checkpoint's update count
    assert a.updates == (400 - 200) // 2 and b.updates - a.updates == 50
    # after the freeze every update and action runs at the final masks ...
    assert b.updates_pathway - a.updates_pathway == 50 * a.update["pathway"]
    assert b.steps_pathway - a.steps_pathway == 100 * a.step["pathway"]
    # ... before it, at the warm-up's masks: with masked convolutions their layers' shares change the cost
    assert a.updates_pathway != a.updates * a.update["pathway"]
