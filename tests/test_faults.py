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
