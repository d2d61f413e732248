"""Faults a long run meets: a kill mid-checkpoint, a kill right after one, a full disk, a run that diverges,
files that must stay ordinary files; and checkpoints on wall time so that a kill costs little."""

import os
import stat

import pytest
import torch

import neuropath as npth
from neuropath.cli import main
from neuropath.errors import RunFault
from neuropath.training import checkpoint
from neuropath.training.logging import read_csv

from .conftest import TINY


def _cfg(tmp_path, name="run", **extra):
    return npth.Config().set({**TINY, "steps": 400, **extra, "run_dir": str(tmp_path / name)})


def test_a_killed_checkpoint_write_is_cleaned_up_at_resume(tmp_path):
    npth.Trainer(_cfg(tmp_path, steps=200)).train()
    junk = tmp_path / "run" / "checkpoints" / ".tmp-ckpt-killed"
    junk.mkdir()
    (junk / "replay.npy").write_bytes(b"x" * 1000)
    (tmp_path / "run" / "checkpoints" / ".tmp-pointer").write_text("ckpt")
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "400", "--no-progress"]) == 0
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))


def test_run_files_keep_ordinary_modes_across_a_resume(tmp_path):
    old = os.umask(0o022)
    try:
        npth.Trainer(_cfg(tmp_path, steps=200)).train()
        assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "400", "--no-progress"]) == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    for path in (run / "config.yaml", run / "checkpoints" / "latest", run / "metrics.csv", run / "episodes.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(checkpoint.latest(run).stat().st_mode) == 0o755


def test_the_episode_that_ended_at_a_checkpoint_is_on_disk_when_the_checkpoint_is(tmp_path):
    """A kill -9 right after a checkpoint loses nothing: the buffered episode rows are flushed before it."""
    trainer = npth.Trainer(_cfg(tmp_path))
    seen = []

    def after(step, info):
        pointer = tmp_path / "run" / "checkpoints" / "latest"
        if info["done"] and pointer.is_file() and pointer.read_text().strip() == f"ckpt-{step:09d}":
            rows = (tmp_path / "run" / "episodes.csv").read_text().splitlines()   # what a kill would leave
            seen.append((step, int(rows[-1].split(",")[0])))
    trainer.train(callback=after)
    assert seen and all(step == last for step, last in seen)


def test_a_full_disk_ends_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    assert main(["train", *sum(([f"--{k.replace('_', '-')}", *(map(str, v) if isinstance(v, list) else [str(v)])]
                                for k, v in TINY.items() if not isinstance(v, bool)), []),
                 "--no-progress", "--steps", "200", "--run-dir", str(tmp_path / "run")]) == 0
    good = checkpoint.latest(tmp_path / "run")
    real = torch.save

    def full(obj, f, *a, **kw):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", full)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "400", "--no-progress"]) == 1
    text = capsys.readouterr().err
    err = [line for line in text.strip().splitlines() if not line.startswith("run directory:")]
    assert "Traceback" not in text and len(err) == 1 and "the disk is full" in err[0] and good.name in err[0], err
    assert "policy-000000400.pt could not be written" in err[0]       # the first write at step 400 says where
    monkeypatch.setattr(torch, "save", real)
    assert checkpoint.latest(tmp_path / "run") == good
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))


def test_a_diverging_run_stops_in_one_line_and_writes_no_bad_checkpoint(tmp_path):
    trainer = npth.Trainer(_cfg(tmp_path, checkpoint_every=100))

    def poison(step, info):
        if step == 250:
            with torch.no_grad():
                trainer.algo.critic.q1[0].weight.fill_(float("nan"))
    with pytest.raises(RunFault, match="training diverged at step") as err:
        trainer.train(callback=poison)
    assert "the last good checkpoint" in str(err.value) and "\n" not in str(err.value)
    ckpt = checkpoint.latest(tmp_path / "run")
    assert int(ckpt.name.split("-")[1]) <= 250
    state = checkpoint.load_state(ckpt)
    assert all(torch.isfinite(v).all() for v in state["algo"].values() if isinstance(v, torch.Tensor)
               and v.is_floating_point())
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert rows and int(rows[-1]["step"]) <= 300


def test_checkpoints_also_follow_wall_time(tmp_path, monkeypatch):
    saved = []
    real = checkpoint.save

    def spy(run_dir, step, *a, **kw):
        saved.append(step)
        return real(run_dir, step, *a, **kw)
    monkeypatch.setattr(checkpoint, "save", spy)
    npth.Trainer(_cfg(tmp_path, "steps", checkpoint_every=100_000, checkpoint_minutes=0)).train()
    by_steps = list(saved)
    saved.clear()
    npth.Trainer(_cfg(tmp_path, "time", checkpoint_every=100_000, checkpoint_minutes=1e-6)).train()
    assert by_steps == [400] and len(saved) > 3            # every episode end once the minutes have passed


def test_a_log_row_cut_mid_write_is_dropped_and_restored_on_resume(tmp_path, capsys):
    """A crash while writing a row leaves a cut last line in metrics.csv and pathway.jsonl: `inspect` and `runs`
    read around it, and `--resume` puts the row back from the checkpoint (which holds it) instead of ending in a
    TypeError, so the curve keeps every finished row."""
    run = tmp_path / "run"
    cfg = {**TINY, "pathway": "dapd", "steps": 300, "eval_every": 100, "run_dir": str(run)}
    npth.Trainer(npth.Config().set(cfg)).train()
    whole = read_csv(run / "metrics.csv")
    for name, cut in (("metrics.csv", 40), ("pathway.jsonl", 25)):
        text = (run / name).read_text()
        (run / name).write_text(text[:-cut])
    assert main(["inspect", str(run), "--no-plot"]) == 0
    assert main(["runs", str(tmp_path)]) == 0
    assert main(["train", "--resume", str(run), "--steps", "400", "--no-progress"]) == 0
    assert "restored from the checkpoint" in capsys.readouterr().err
    rows = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [100, 200, 300, 400]
    assert [r["return_mean"] for r in rows[:3]] == [r["return_mean"] for r in whole]


def _dqn_cartpole(run, steps=600):
    return ["--algo", "dqn", "--env", "CartPole-v1", "--pathway", "static", "--steps", str(steps), "--seed-steps",
            "100", "--train-every", "1", "--eval-every", "150", "--eval-episodes", "1", "--init-steps", "64",
            "--score-batch", "32", "--dqn-target-every", "50", "--checkpoint-every", "150", "--log-every", "50",
            "--no-progress", "--threads", "1", "--run-dir", str(run)]


def _ppo_cartpole(run, steps=1024):
    return ["--algo", "ppo", "--env", "CartPole-v1", "--pathway", "static", "--steps", str(steps), "--num-envs", "2",
            "--rollout-steps", "64", "--minibatches", "2", "--epochs", "1", "--eval-every", "256",
            "--eval-episodes", "1", "--checkpoint-every", "256", "--no-progress", "--threads", "1",
            "--run-dir", str(run)]


def _poison_after(monkeypatch, cls, updates, net):
    """``cls.update`` turns one weight of ``net`` NaN after its ``updates``-th call: a run that diverges."""
    real = cls.update

    def update(self, *a, **kw):
        out = real(self, *a, **kw)
        if self.updates == updates:
            with torch.no_grad():
                next(getattr(self, net).parameters()).view(-1)[0] = float("nan")
        return out
    monkeypatch.setattr(cls, update.__name__, update)


@pytest.mark.parametrize("kind", ["dqn", "ppo"])
def test_a_diverging_dqn_or_ppo_run_stops_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                                        capsys, kind):
    from neuropath.algos.dqn import DQN
    from neuropath.algos.ppo import PPO
    run = tmp_path / kind
    if kind == "dqn":
        _poison_after(monkeypatch, DQN, 250, "q")                     # step 350, after the checkpoint at ~300
        argv = _dqn_cartpole(run)
    else:
        _poison_after(monkeypatch, PPO, 10, "actor")                  # iteration 5 (2 updates an iteration)
        argv = _ppo_cartpole(run)
    assert main(["train", *argv]) == 1
    text = capsys.readouterr().err
    # (a static pathway's freeze at the start may warn of inputs it cuts off: a line of its own, not the fault's)
    err = [line for line in text.strip().splitlines() if not line.startswith(("run directory:", "warning:"))]
    assert "Traceback" not in text and len(err) == 1 and "training diverged at step" in err[0], err
    ckpt = checkpoint.latest(run)
    assert ckpt.name in err[0]
    state = checkpoint.load_state(ckpt)
    assert all(torch.isfinite(v).all() for v in state["algo"].values() if isinstance(v, torch.Tensor)
               and v.is_floating_point())


@pytest.mark.parametrize("kind", ["dqn", "ppo"])
def test_dqn_and_ppo_rows_up_to_a_checkpoint_are_on_disk_with_it_and_time_checkpoints_too(tmp_path, monkeypatch,
                                                                                          kind):
    """A kill -9 right after a checkpoint loses no episode row; --checkpoint-minutes is honoured."""
    from neuropath.training.logging import read_csv as rows_of
    seen, real = [], checkpoint.save

    def spy(run_dir, step, *a, **kw):
        episodes = rows_of(run_dir / "episodes.csv")              # what a kill right after would leave
        seen.append((step, int(episodes[-1]["step"]) if episodes else 0))
        return real(run_dir, step, *a, **kw)
    monkeypatch.setattr(checkpoint, "save", spy)
    argv = _dqn_cartpole(tmp_path / kind) if kind == "dqn" else _ppo_cartpole(tmp_path / kind, 512)
    assert main(["train", *argv]) == 0
    full = rows_of(tmp_path / kind / "episodes.csv")
    for step, last in seen:                                       # every episode that ended by then is there
        assert last == max([int(r["step"]) for r in full if int(r["step"]) <= step], default=0), (step, last)
    by_steps = len(seen)
    seen.clear()
    assert main(["train", *argv[:-1], str(tmp_path / f"{kind}-time"), "--checkpoint-minutes", "1e-6"]) == 0
    assert len(seen) > by_steps
