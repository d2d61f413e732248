"""The multi-task loop on the real Meta-World MT10 for a few hundred steps, tiny networks."""

import json

import pytest
import torch

from neuropath.cli import main
from neuropath.training import checkpoint
from neuropath.training.logging import read_csv

TINY_MT = ["--benchmark", "MT10", "--steps", "240", "--seed-steps", "80", "--eval-every", "120",
           "--eval-episodes", "1", "--episode-steps", "40", "--hidden", "16", "16", "--batch-size", "8",
           "--score-batch", "8", "--window", "80", "--no-progress", "--threads", "1"]
# Two of the ten tasks: the same code path at a fifth of the cost (building the ten Meta-World envs
# takes ~6 s per vector env); the full MT10 runs end to end in the first test.
TINY_SUB = [*TINY_MT, "--tasks", "reach-v3,push-v3"]


def test_dapd_on_mt10_scores_per_task_pathways_freezes_and_merges(tmp_path, capsys):
    run = tmp_path / "mt"
    assert main(["train", *TINY_MT, "--pathway", "dapd", "--freeze-step", "200", "--run-dir", str(run)]) == 0
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["120", "240"] and rows[-1]["phase"] == "frozen"
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert all(0.0 <= float(r[f"success_{t}"]) <= 1.0 for r in rows for t in ("reach_v3", "window_close_v3"))
    events = [json.loads(line) for line in (run / "pathway.jsonl").read_text().splitlines()]
    init = [e for e in events if e["event"] == "init"]
    assert len(init) == 2 and all(len(e["changed"]) == 10 for e in init)
    assert any(e["event"] == "update" for e in events)
    assert [e["step"] for e in events if e["event"] == "freeze"] == [200, 200]
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    w, m = state["actor.net.0.weight"], state["actor.net.0.mask"]
    assert torch.equal(w[0], w[9])                                   # merged: one shared weight
    assert not torch.equal(m[0], m[1])                               # ... with a pathway per task
    keep = sum(int(state[f"actor.net.{i}.mask"][3].sum()) for i in (0, 2, 4))
    total = sum(state[f"actor.net.{i}.mask"][3].numel() for i in (0, 2, 4))
    assert keep == int(0.05 * total)                                 # top-k keeps exactly k per task
    png = tmp_path / "overlap.png"
    assert main(["inspect", str(run), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "actor overlap matrix" in out and "union of the pathways" in out and png.stat().st_size > 0


@pytest.mark.parametrize("heads", ["shared", "per-task"])
def test_dense_mt_sac_and_its_multi_head_variant_run(tmp_path, heads):
    run = tmp_path / heads
    assert main(["train", *TINY_SUB, "--pathway", "dense", "--heads", heads, "--run-dir", str(run)]) == 0
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    trunk, head = state["actor.net.0.weight"], state["actor.net.4.weight"]
    assert torch.equal(trunk[0], trunk[1])                           # MT-SAC: one shared trunk
    assert torch.equal(head[0], head[1]) == (heads == "shared")      # heads: shared, or one per task
    assert read_csv(run / "metrics.csv")[-1]["phase"] == "dense"


@pytest.mark.parametrize("args,needle", [
    (["--benchmark", "MT11"], "unknown benchmark 'MT11'; did you mean MT10?"),
    (["--benchmark", "MT10", "--pathway", "rigl"], "--pathway rigl is not available with --benchmark yet"),
    (["--benchmark", "MT10", "--heads", "many"], "--heads must be shared or per-task"),
    (["--benchmark", "MT10", "--tasks", "reach-v3,psh-v3"], "unknown MT10 task 'psh-v3'; did you mean push-v3?"),
    (["--benchmark", "MT10", "--tasks", "reach-v3,reach-v3"], "--tasks names a task twice"),
    (["--env", "Hopper-v5", "--tasks", "reach-v3"], "--tasks chooses tasks of a multi-task benchmark"),
])
def test_bad_multitask_settings_end_in_one_line(tmp_path, capsys, args, needle):
    assert main(["train", *args, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_task_subset_trains_only_those_tasks_and_a_checkpoint_of_another_task_count_is_refused(
        tmp_path, capsys):
    run = tmp_path / "sub"
    args = [a if a != "240" else "100" for a in TINY_MT]
    assert main(["train", *args, "--tasks", "window-close-v3,reach-v3", "--run-dir", str(run)]) == 0
    row = read_csv(run / "metrics.csv")[-1]
    assert sorted(k for k in row if k.startswith("success_") and k != "success_mean") == [
        "success_reach_v3", "success_window_close_v3"]                # benchmark order, nothing else
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    assert state["actor.net.0.weight"].shape == (2, 16, 39 + 2)        # two task rows, a 2-wide one-hot
    assert checkpoint.read_meta(checkpoint.latest(run))["tasks"] == ["reach-v3", "window-close-v3"]
    capsys.readouterr()
    cfg = (run / "config.yaml").read_text().replace("window-close-v3,reach-v3", "window-close-v3,reach-v3,push-v3")
    (run / "config.yaml").write_text(cfg)
    assert main(["train", "--resume", str(run), "--steps", "200"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has 2 tasks" in err and "this run has 3" in err and len(err.splitlines()) == 1


def test_an_interrupted_mt10_run_resumes_from_its_checkpoint(tmp_path):
    run = tmp_path / "mt"
    args = [a if a != "240" else "160" for a in TINY_SUB]
    assert main(["train", *args, "--pathway", "dapd", "--checkpoint-every", "100", "--run-dir", str(run)]) == 0
    first = read_csv(run / "metrics.csv")
    assert main(["train", "--resume", str(run), "--steps", "240", "--no-progress"]) == 0
    rows = read_csv(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["120", "160", "240"] and rows[:2] == first
    assert float(rows[-1]["cpu_seconds"]) > float(rows[1]["cpu_seconds"])
    assert checkpoint.latest(run).name == "ckpt-000000240"
    assert main(["train", "--resume", str(run), "--pathway", "dense"]) == 2       # its own config only


def test_single_task_commands_refuse_a_multitask_run_in_one_line(tmp_path, capsys):
    run = tmp_path / "mt"
    args = [a if a != "240" else "100" for a in TINY_SUB]
    assert main(["train", *args, "--pathway", "dapd", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    for cmd in (["flops", str(run)], ["eval", str(run)], ["export", str(run), str(tmp_path / "x")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert "multi-task" in err and len(err.splitlines()) == 1
    assert main(["runs", str(tmp_path)]) == 0 and "MT10" in capsys.readouterr().out
    cfg = (run / "config.yaml").read_text().replace("- 16\n  - 16", "- 8\n  - 8")    # another shape
    (run / "config.yaml").write_text(cfg)
    assert main(["train", "--resume", str(run), "--steps", "200"]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_expert_replay_datasets_come_from_an_mt10_runs_replay(tmp_path, monkeypatch):
    import minari
    import numpy as np
    from neuropath.experiments.make_datasets import make_mt10_replay_datasets
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    run = tmp_path / "mt"
    args = [a if a != "240" else "100" for a in TINY_SUB]
    assert main(["train", *args, "--pathway", "dense", "--run-dir", str(run)]) == 0
    ids = make_mt10_replay_datasets(run, transitions=90, tasks=("push-v3",))
    data = minari.load_dataset(ids[0])
    episodes = list(data.iterate_episodes())
    assert data.total_steps == 90 and episodes[0].observations.shape[1] == 39
    with np.load(checkpoint.latest(run) / "replay.npy") as replay:
        push = replay["obs"][1, :, :39]                                # row 1 = push, one-hot stripped
    stored = {tuple(np.round(o, 4)) for o in push}
    assert all(tuple(np.round(o, 4)) in stored for e in episodes for o in e.observations[:-1])


def test_per_task_pathways_take_any_score_and_each_network_its_own(tmp_path, capsys):
    run = tmp_path / "scores"
    assert main(["train", *TINY_SUB, "--pathway", "dapd", "--score", "magnitude", "--critic-score", "grasp",
                 "--freeze-step", "200", "--run-dir", str(run)]) == 0
    state = checkpoint.load_state(checkpoint.latest(run))["algo"]
    for net in ("actor", "critic"):
        masks = [v for k, v in state.items() if k.startswith(f"{net}.") and k.endswith(".mask")]
        total = sum(m[0].numel() for m in masks)
        assert [sum(int(m[t].sum()) for m in masks) for t in range(2)] == [int(0.05 * total)] * 2
    assert main(["inspect", str(run), "--no-plot"]) == 0
    assert "score magnitude (critic grasp)" in capsys.readouterr().out


@pytest.mark.parametrize("batches,draws", [("separate", 2), ("shared", 1)])
def test_mt10_scores_its_masks_through_the_pathway_driver_and_reads_score_batches(tmp_path, monkeypatch,
                                                                                  batches, draws):
    from neuropath.training.loops.mtsac import MultiTaskTrainer
    drawn = []
    original = MultiTaskTrainer._score_batch

    def counted(self):
        drawn.append(self.step)
        return original(self)
    monkeypatch.setattr(MultiTaskTrainer, "_score_batch", counted)
    run = tmp_path / batches
    args = [a if a != "240" else "100" for a in TINY_SUB]
    assert main(["train", *args, "--pathway", "dapd", "--score-batches", batches, "--run-dir", str(run)]) == 0
    assert drawn == [80] * draws                          # one scoring batch per network, or one for both
    events = [json.loads(line) for line in (run / "pathway.jsonl").read_text().splitlines()]
    inits = [e for e in events if e["event"] == "init"]
    assert [e["net"] for e in inits] == ["actor", "critic"]
    assert all(len(e["density"]) == 2 and all(len(v) == 2 for v in e["layers"].values()) for e in inits)
