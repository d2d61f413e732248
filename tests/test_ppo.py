"""PPO with pathways on the real environments (Hopper, CartPole) for a few rollouts, tiny budgets."""

import json

import numpy as np
import pytest
import torch

from neuropath.algos.ppo import PPO, PPOConfig, RolloutBatch, gae
from neuropath.cli import main
from neuropath.training import checkpoint
from neuropath.training.logging import read_csv

TINY = ["--algo", "ppo", "--env", "Hopper-v5", "--steps", "1536", "--rollout-steps", "256", "--minibatches", "4",
        "--epochs", "2", "--eval-every", "512", "--eval-episodes", "1", "--ppo-hidden", "16", "16",
        "--score-batch", "64", "--no-progress", "--threads", "1"]


def test_gae_matches_the_recursion_by_hand():
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [0.0], [1.0]])          # obs 2 starts a new episode: 1 → 2 is terminal
    adv, ret = gae(r, v, dones, torch.tensor([2.0]), torch.tensor([0.0]), gamma=0.9, lam=0.8)
    d2 = 3.0 + 0.9 * 2.0 - 1.5
    d1 = 2.0 - 1.0                                       # no bootstrap across the episode end
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a1 = d1
    a0 = d0 + 0.9 * 0.8 * a1
    assert torch.allclose(adv[:, 0], torch.tensor([a0, a1, d2]))
    assert torch.allclose(ret, adv + v)


def test_clipped_surrogate_and_value_losses_follow_the_formulas():
    torch.manual_seed(0)
    ppo = PPO(3, 2, PPOConfig(hidden=[8], clip=0.2, ent_coef=0.0))
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    with torch.no_grad():
        logp_new, _ = ppo.actor.log_prob_entropy(obs, act)
    old = logp_new + torch.tensor([0.5, -0.5, 0.05, -0.05, 0.3, -0.3])     # ratios outside and inside the clip
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0, -0.5, 0.5])
    value, ret = torch.randn(6), torch.randn(6)
    b = RolloutBatch(obs, act, old, adv, ret, value)
    ratio = (logp_new - old).exp()
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    expected = torch.max(-a * ratio, -a * ratio.clamp(0.8, 1.2)).mean()
    assert torch.allclose(ppo.policy_loss(b), expected, atol=1e-6)
    with torch.no_grad():
        v = ppo.value(obs).squeeze(-1)
    clipped = value + (v - value).clamp(-0.2, 0.2)
    assert torch.allclose(ppo.value_loss(b), 0.5 * torch.max((v - ret) ** 2, (clipped - ret) ** 2).mean(), atol=1e-6)
    ppo.cfg.clip_value = False                                          # SB3's default: no value clipping
    assert torch.allclose(ppo.value_loss(b), 0.5 * ((v - ret) ** 2).mean(), atol=1e-6)
    assert not torch.allclose(ppo.value_loss(b), 0.5 * torch.max((v - ret) ** 2, (clipped - ret) ** 2).mean())


def test_a_time_limit_cut_is_bootstrapped_with_the_final_observations_value_and_a_termination_is_not(tmp_path):
    from neuropath.training.config import Config
    from neuropath.training.loops.ppo import PPOTrainer
    assert main(["train", "--algo", "ppo", "--env", "Pendulum-v1", "--steps", "512", "--rollout-steps", "128",
                 "--minibatches", "2", "--epochs", "1", "--eval-every", "512", "--eval-episodes", "1",
                 "--ppo-hidden", "8", "--bootstrap-truncated", "--no-clip-value", "--no-progress", "--threads", "1",
                 "--run-dir", str(tmp_path / "cli")]) == 0
    saved = (tmp_path / "cli" / "config.yaml").read_text()
    assert "bootstrap_truncated: true" in saved and "clip_value: false" in saved
    # Pendulum-v1 never terminates and is cut at 200 steps: the bonus is γ·V(final obs) there, 0 before
    cfg = Config().set({"algo": "ppo", "env": "Pendulum-v1", "steps": 256, "num_envs": 2, "ppo_hidden": "8",
                        "bootstrap_truncated": True, "progress": False, "run_dir": str(tmp_path / "unit")})
    trainer = PPOTrainer(cfg)
    trainer._observe(trainer.envs.reset(seed=0)[0])
    for t in range(200):
        obs, _, terminated, truncated, info = trainer.envs.step(np.zeros((2, 1), np.float32))
        trainer._observe(obs)
        bonus = trainer._truncation_bonus(terminated, truncated, info)
        assert t == 199 or not bonus.any()
    assert truncated.all() and not terminated.any()
    final = torch.as_tensor(trainer.normalise(np.stack(info["final_obs"])), dtype=torch.float32)
    with torch.no_grad():
        expected = cfg.sac.gamma * trainer.algo.value(final).squeeze(-1).numpy()
    assert np.allclose(bonus, expected, atol=1e-6) and (bonus != 0).all()
    assert not np.allclose(np.stack(info["final_obs"]), obs)          # the final observation, not the reset one
    # an episode that terminated (also at the time limit) ends its return: no bonus
    assert not trainer._truncation_bonus(np.array([True, False]), np.array([True, False]), info).any()


def test_dapd_ppo_rescoring_after_rollouts_freezes_and_never_moves_masked_weights(tmp_path):
    run = tmp_path / "ppo"
    assert main(["train", *TINY, "--pathway", "dapd", "--freeze-step", "1000", "--checkpoint-every", "512",
                 "--run-dir", str(run)]) == 0
    events = [json.loads(x) for x in (run / "pathway.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["net"] == "actor"][:3] == ["init", "update", "update"]
    assert [e["step"] for e in events if e["event"] == "freeze"] == [1024, 1024]
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["512", "1024", "1536"] and rows[-1]["phase"] == "frozen"
    state = checkpoint.load_state(checkpoint.latest(run))
    algo = state["algo"]
    for net in ("actor.net", "value"):
        kept = sum(int(algo[f"{net}.{i}.mask"].sum()) for i in (0, 2, 4))
        total = sum(algo[f"{net}.{i}.mask"].numel() for i in (0, 2, 4))
        assert kept == int(0.05 * total)                                # exactly k per network
    norm = state["normalisation"]
    assert norm["obs"]["count"] > 1536 and norm["obs"]["mean"].shape == (11,) and norm["return"]["count"] > 1536

    # after the freeze, weights outside the pathway never move: train on from the checkpoint
    before = {k: v.clone() for k, v in algo.items() if k.endswith("weight")}
    assert main(["train", "--resume", str(run), "--steps", "2048", "--no-progress"]) == 0
    after = checkpoint.load_state(checkpoint.latest(run))["algo"]
    for k, w in before.items():
        mask = algo[k[:-len("weight")] + "mask"].reshape(w.shape)
        assert torch.equal(after[k][~mask], w[~mask]), k
        assert not torch.equal(after[k][mask], w[mask]), k
    assert [r["step"] for r in read_csv(run / "metrics.csv")][-1] == "2048"


def _cartpole(run, steps: int, epochs: int) -> list[str]:
    """A tiny discrete PPO run with a static pathway."""
    return ["--algo", "ppo", "--env", "CartPole-v1", "--pathway", "static", "--steps", str(steps), "--num-envs", "2",
            "--rollout-steps", "128", "--minibatches", "4", "--epochs", str(epochs), "--eval-every", "256",
            "--eval-episodes", "1", "--no-progress", "--threads", "1", "--run-dir", str(run)]


def test_discrete_ppo_runs_and_evaluates(tmp_path, capsys):
    run = tmp_path / "cart"
    assert main(["train", *_cartpole(run, 600, 2)]) == 0        # ends on a whole rollout: step 768
    assert read_csv(run / "metrics.csv")[-1]["step"] == "768"
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| CartPole-v1 (ppo) | static |" in report and "Unfinished" not in report   # overshoot counts as done
    from types import SimpleNamespace

    from neuropath.efficiency.counted_flops import ppo_flops_of_run
    from neuropath.experiments.report import _run_flops
    # the report's energy table counts PPO runs' training FLOPs as `neuropath flops` does (it read SAC only)
    assert _run_flops(SimpleNamespace(path=run)) == ppo_flops_of_run(run).totals()["run_pathway"] > 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "CartPole-v1: return" in out and "actor density 0.05" in out
    assert main(["runs", str(tmp_path)]) == 0 and "CartPole-v1 (ppo)" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_first_rollout_updates(tmp_path):
    rows = []
    for name in ("a", "b"):
        args = [a if a != "1536" else "256" for a in TINY]
        assert main(["train", *args, "--pathway", "dense", "--run-dir", str(tmp_path / name)]) == 0
        rows.append([r["return_mean"] for r in read_csv(tmp_path / name / "metrics.csv")])
    assert rows[0] == rows[1]


@pytest.mark.parametrize("args,needle", [
    (["--env", "CartPole-v1"], "has Discrete actions; SAC needs continuous (Box) actions"),
    (["--algo", "ppo", "--pathway", "rigl"], "--pathway rigl is not available with --algo ppo"),
    (["--algo", "ppo", "--rollout-steps", "100", "--minibatches", "32"], "must divide into --minibatches"),
    (["--algo", "a2c"], "unknown algorithm 'a2c'"),
    (["--algo", "iql"], "--algo iql is an offline algorithm: it needs --dataset"),
])
def test_bad_algorithm_settings_end_in_one_line(tmp_path, capsys, args, needle):
    assert main(["train", *args, "--steps", "100", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_ppo_action_is_the_mean_or_most_likely_action():
    torch.manual_seed(0)
    cont, disc = PPO(3, 2, PPOConfig(hidden=[8])), PPO(3, 4, PPOConfig(hidden=[8]), discrete=True)
    x = np.ones(3, np.float32)
    with torch.no_grad():
        assert np.allclose(cont.act(x), cont.actor.net(torch.as_tensor(x)).numpy())
        assert int(disc.act(x)) == int(disc.actor.net(torch.as_tensor(x)).argmax())


def test_flops_and_inspect_work_on_a_ppo_run(tmp_path, capsys):
    run = tmp_path / "f"
    args = [a if a != "1536" else "512" for a in TINY]
    assert main(["train", *args, "--pathway", "dapd", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["flops", str(run), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["steps"] == 512 and r["updates"] == 2 * 4 * 2          # 2 rollouts × 2 epochs × 4 minibatches
    assert all(v["active"] == int(0.05 * v["total"]) for v in r["parameters"].values())
    assert r["update"]["pathway"] < 0.07 * r["update"]["dense"] and set(r["scoring"]) == {"actor", "value"}
    assert main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    assert "actor:" in out and "value:" in out and "mask updates" in out


def _exported_matches(run, out, observations, capsys):
    """`neuropath export` of a run gives the run's own deterministic actions, without torch."""
    import numpy as np

    from neuropath.efficiency import compact_policy
    from neuropath.policy import load_policy
    capsys.readouterr()
    assert main(["export", str(run), str(out)]) == 0
    cp, policy = compact_policy.load(out), load_policy(run)
    batch = cp.act_unit(observations)
    for i, obs in enumerate(observations):
        expected = policy.act_unit(obs, deterministic=True)
        assert np.allclose(cp.act_unit(obs), expected, atol=1e-5) and np.allclose(batch[i], expected, atol=1e-5)
    return cp


def test_export_of_a_ppo_run_keeps_its_observation_statistics_and_clipped_mean(tmp_path, capsys):
    import numpy as np
    run = tmp_path / "e"
    args = [a if a != "1536" else "512" for a in TINY]
    assert main(["train", *args, "--pathway", "dapd", "--run-dir", str(run)]) == 0
    obs = np.random.default_rng(0).normal(0, 2, (16, 11)).astype(np.float32)   # beyond the statistics: clipping
    cp = _exported_matches(run, tmp_path / "out", obs, capsys)
    assert cp.meta["head"] == "clip" and cp.meta["hidden"] == "tanh" and cp.meta["obs_normalised"]
    low, high = cp.low, cp.high
    action, _ = cp.predict(obs[0], deterministic=True)
    assert np.allclose(action, low + (cp.act_unit(obs[0]) + 1) / 2 * (high - low), atol=1e-5)


def test_export_of_a_discrete_ppo_run_gives_the_greedy_action(tmp_path, capsys):
    import numpy as np
    run = tmp_path / "cart"
    assert main(["train", *_cartpole(run, 256, 1)]) == 0
    obs = np.random.default_rng(1).normal(0, 1, (32, 4)).astype(np.float32)
    cp = _exported_matches(run, tmp_path / "out", obs, capsys)
    assert cp.meta["head"] == "argmax" and isinstance(cp.predict(obs[0], deterministic=True)[0], int)


@pytest.mark.parametrize("mode,draws", [("separate", 2), ("shared", 1)])
def test_ppo_mask_updates_follow_score_batches_like_sac(tmp_path, mode, draws):
    """The pathway driver gives every loop `--score-batches`: PPO's actor and value network are scored on one
    batch each (separate) or on the first one drawn for both (shared); before, PPO always drew one each."""
    from collections import Counter

    from neuropath.cli import build_parser
    from neuropath.training.config import Config
    from neuropath.training.loops.ppo import PPOTrainer
    argv = ["train", *TINY, "--env", "CartPole-v1", "--steps", "512", "--rollout-steps", "128", "--pathway", "dapd",
            "--score-batches", mode, "--run-dir", str(tmp_path / mode)]
    args = vars(build_parser().parse_args(argv))
    trainer = PPOTrainer(Config().set({k: v for k, v in args.items() if k in Config.fields() and v is not None}))
    drawn = Counter()
    sample = trainer._score_sample
    trainer._score_sample = lambda batch: drawn.update([trainer.step]) or sample(batch)
    trainer.train()
    events = [json.loads(line) for line in (tmp_path / mode / "pathway.jsonl").read_text().splitlines()]
    scorings = Counter(step for step, _ in {(e["step"], e["event"]) for e in events if e["event"] in ("init", "update")})
    assert len(scorings) > 1 and drawn == Counter({step: n * draws for step, n in scorings.items()}), (drawn, scorings)


def test_ppo_flops_price_each_rollout_at_the_masks_of_its_time_and_the_first_one_dense(tmp_path):
    import shutil

    from neuropath.efficiency.counted_flops import ppo_flops_of_run
    run, early = tmp_path / "r", tmp_path / "early"
    args = [a if a != "1536" else "512" for a in TINY]
    assert main(["train", *args, "--pathway", "dapd", "--run-dir", str(run)]) == 0
    shutil.copytree(run, early)                                        # the run at 512 steps, kept apart
    assert main(["train", "--resume", str(run), "--steps", "768", "--no-progress"]) == 0
    a, b = ppo_flops_of_run(early), ppo_flops_of_run(run)
    assert a.notes == [] and b.notes == [] and b.updates - a.updates == 8       # 2 epochs × 4 minibatches
    # the first rollout acts before its masks exist (dense); the rest at the pathway (DAPD's warm-up keeps
    # exactly k weights per network, and one forward row costs their sum)
    assert a.steps_pathway == 256 * a.step["dense"] + 256 * a.step["pathway"] < 512 * a.step["dense"]
    # the third rollout acts and updates at the masks the run held at step 512: the early copy's final ones
    assert b.updates_pathway - a.updates_pathway == 8 * a.update["pathway"]
    assert b.steps_pathway - a.steps_pathway == 256 * a.step["pathway"]
    assert b.totals()["run_pathway"] == b.updates_pathway + b.steps_pathway + sum(b.scoring.values())
    # a run cut after its checkpoint has logged events past it: they are not the checkpoint's run
    later = [line for line in (run / "pathway.jsonl").read_text().splitlines() if json.loads(line)["step"] > 512]
    assert later
    with open(early / "pathway.jsonl", "a") as f:
        f.write("\n".join(later) + "\n")
    assert ppo_flops_of_run(early).to_dict() == a.to_dict()
