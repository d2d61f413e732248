"""Every kind of run goes through the same protocol: train, resume to a larger budget (a smaller one refused),
evaluate, inspect, count FLOPs, export, load its policy with SB3's predict. Where a kind does not support a
command, it says so in one line with exit status 2. The loops were written one by one and drifted (resume
dropped --device in five of six, Ctrl-C gave a traceback in two); this test holds them to one contract."""

import gymnasium as gym
import numpy as np
import pytest

from neuropath.cli import main
from neuropath.kinds import KINDS, kind_of_run
from neuropath.training.logging import read_csv

from .conftest import TINY, make_hopper_replay_dataset, minari_datasets_in
from .test_train import _flags

SAC = _flags({**TINY, "eval_every": 100, "checkpoint_every": 100})
PPO = ["--algo", "ppo", "--env", "Hopper-v5", "--rollout-steps", "128", "--minibatches", "2", "--epochs", "1",
       "--eval-every", "256", "--eval-episodes", "1", "--ppo-hidden", "16", "16", "--score-batch", "64",
       "--no-progress", "--threads", "1"]
DQN = ["--algo", "dqn", "--env", "CartPole-v1", "--seed-steps", "100", "--train-every", "1", "--eval-every", "100",
       "--eval-episodes", "1", "--init-steps", "100", "--score-batch", "32", "--window", "100",
       "--dqn-target-every", "50", "--dqn-hidden", "16", "16", "--no-progress", "--threads", "1"]
MT = ["--benchmark", "MT10", "--tasks", "reach-v3,push-v3", "--seed-steps", "40", "--eval-every", "40",
      "--eval-episodes", "1", "--episode-steps", "40", "--hidden", "16", "16", "--batch-size", "8", "--score-batch", "8",
      "--window", "40", "--no-progress", "--threads", "1"]
OFFLINE = ["--eval-every", "20", "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "16",
           "--score-batch", "16", "--npf-batches", "2", "--no-progress", "--threads", "1"]

# kind: (flags, pathway, steps before and after the resume, what the kind supports)
CASES = {
    "sac": (SAC, "dapd", (200, 300)),
    "ppo": (PPO, "dapd", (256, 512)),
    "dqn": (DQN, "dapd", (200, 300)),
    "mt10": (MT, "dapd", (40, 80)),
    "offline": (["--dataset", "neuropath/hopper/expert-replay-v0", "--algo", "iql", *OFFLINE], "npf", (20, 40)),
    "offline-mt10": (["--benchmark", "MT10", "--tasks", "reach-v3,push-v3", "--dataset", "expert", "--algo", "iql",
                      *OFFLINE], "npf", (20, 40)),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A Hopper expert-replay dataset from a tiny SAC run and MT10 expert data for two tasks."""
    from neuropath.data.metaworld_datasets import make_mt10_datasets
    root = tmp_path_factory.mktemp("kinds")
    with minari_datasets_in(root / "minari"):
        make_hopper_replay_dataset(root / "source", [*SAC, "--steps", "300"], 300)
        make_mt10_datasets("expert", transitions=60, seed=0, episode_steps=30, tasks=("reach-v3", "push-v3"))
        yield root


def _one_line_refusal(argv: list[str], capsys, says: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


@pytest.mark.parametrize("name", list(CASES))
def test_every_kind_trains_resumes_evaluates_inspects_counts_and_exports_through_one_protocol(
        name, datasets, tmp_path, capsys):
    flags, pathway, (first, second) = CASES[name]
    kind = KINDS[name]
    run = tmp_path / name
    assert main(["train", *flags, "--pathway", pathway, "--steps", str(first), "--run-dir", str(run)]) == 0
    assert kind_of_run(run) is kind
    assert f"run directory: {run}" in capsys.readouterr().out            # the result line, then where it is

    _one_line_refusal(["train", "--resume", str(run), "--steps", str(first - 1)], capsys, "--steps")
    assert main(["train", "--resume", str(run), "--steps", str(second), "--device", "cpu"]) == 0
    rows = read_csv(run / "metrics.csv")
    assert int(rows[-1]["step"]) == second and len({r["step"] for r in rows}) == len(rows)   # no row twice

    from neuropath.training import checkpoint
    assert "cuda" in checkpoint.load_state(checkpoint.latest(run))["rng"]    # every loop saves every stream
    assert main(["inspect", str(run)]) == 0
    for command, supported in (("eval", kind.policy is not None), ("flops", kind.flops is not None),
                               ("export", kind.exports)):
        argv = {"eval": ["eval", str(run), "--episodes", "1"], "flops": ["flops", str(run)],
                "export": ["export", str(run), str(tmp_path / "exported")]}[command]
        if supported:
            assert main(argv) == 0, command
        else:
            _one_line_refusal(argv, capsys, "is " + kind.describe.format(algo="iql"))

    if kind.policy is not None:                   # SB3's predict, in the environment's own action space
        from neuropath.policy import load_policy
        policy = load_policy(run)
        env = gym.make(policy.env_id)
        obs, _ = env.reset(seed=0)
        for deterministic in (True, False):
            action, state = policy.predict(obs, deterministic=deterministic)
            assert state is None and env.action_space.contains(np.asarray(action, env.action_space.dtype))
        env.close()

    if name in ("ppo", "dqn", "offline"):         # its networks rebuilt from an edited config: one line each
        cfg = run / "config.yaml"
        cfg.write_text(cfg.read_text().replace("- 16\n  - 16", "- 8\n  - 8"))
        for argv in (["eval", str(run), "--episodes", "1"], ["flops", str(run)]):
            _one_line_refusal(argv, capsys, "does not fit its own config")


@pytest.mark.parametrize("name", list(CASES))
def test_ctrl_c_in_any_kind_ends_in_one_line_with_status_130_and_the_run_resumes(name, datasets, tmp_path,
                                                                                 capsys, monkeypatch):
    """A KeyboardInterrupt at the second evaluation (the user's Ctrl-C, or SIGTERM): every loop checkpoints
    what it did and the CLI says so in one line (MT10 and offline runs used to end in a traceback)."""
    flags, pathway, (first, second) = CASES[name]
    cls = KINDS[name].trainer_class()
    evaluate, calls = cls.evaluate, []

    def interrupted(self):
        calls.append(self.step)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(self)

    monkeypatch.setattr(cls, "evaluate", interrupted)
    run = tmp_path / name
    capsys.readouterr()
    assert main(["train", *flags, "--pathway", pathway, "--steps", str(second), "--run-dir", str(run)]) == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1] == f"neuropath: interrupted; a checkpoint was saved: continue with `neuropath train --resume {run}`"
    monkeypatch.setattr(cls, "evaluate", evaluate)
    assert main(["train", "--resume", str(run)]) == 0
    assert int(read_csv(run / "metrics.csv")[-1]["step"]) == second


@pytest.mark.parametrize("name", list(CASES))
def test_an_evaluation_callback_sees_every_row_and_stops_any_kind_checkpointed(name, datasets, tmp_path):
    """``npth.train(trainer, on_eval)``, SB3's EvalCallback for every kind: each evaluation row reaches the
    callback as metrics.csv gets it; returning False stops the run there, checkpointed, and it resumes."""
    import neuropath as npth
    from neuropath.cli import build_parser
    from neuropath.training.config import Config
    flags, pathway, (first, second) = CASES[name]
    run = tmp_path / name
    args = vars(build_parser().parse_args(["train", *flags, "--pathway", pathway, "--steps", str(second),
                                           "--run-dir", str(run)]))
    cfg = Config().set({k: v for k, v in args.items() if k in Config.fields() and v is not None})
    seen = []
    row = npth.train(npth.Trainer(cfg), on_eval=lambda r: seen.append(r) or False)     # stop at the first
    assert row is seen[-1] and len(seen) == 1 and int(row["step"]) < second
    logged = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in logged] == [int(r["step"]) for r in seen]
    resumed = npth.Trainer.resume(run)
    assert int(npth.train(resumed, on_eval=lambda r: seen.append(r))["step"]) == second    # None: go on
    logged = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in logged] == [int(r["step"]) for r in seen] and len(seen) > 1
