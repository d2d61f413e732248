"""Sweeps (local processes and Ray) and the report built from them, on real tiny runs."""

import csv

import numpy as np
import pytest
import yaml

import neuropath as npth
from neuropath.cli import main
from neuropath.experiments.sweep import Grid, run_name
from neuropath.experiments.report import score_decimals
from neuropath.training.logging import read_csv

from .conftest import HeldRun
from .test_train import _one_line_error

TINY_SET = ["--set", "hidden=16,16", "--set", "batch_size=16", "--set", "seed_steps=50", "--set", "eval_every=20",
            "--set", "eval_episodes=1", "--set", "checkpoint_every=100", "--set", "log_every=100",
            "--set", "set:update_every=50"]


def _sweep(out, *extra, steps=200, seeds=("0", "1"), methods=("dense", "set")):
    return main(["sweep", str(out), "--envs", "Hopper-v5", "--methods", *methods, "--seeds", *seeds,
                 "--steps", str(steps), "--jobs", "2", *TINY_SET, *extra])


def _last10(run_dir):
    rows = read_csv(run_dir / "metrics.csv")
    return float(np.mean([float(r["return_mean"]) for r in rows][-10:]))


def test_sweep_runs_the_grid_skips_finished_and_reports_the_right_numbers(tmp_path, capsys):
    out = tmp_path / "sw"
    assert _sweep(out) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(run_name("Hopper-v5", m, k, s) for m, k in (("dense", 1), ("set", 0.05)) for s in (0, 1))
    stamps = {r: (out / "runs" / r / "metrics.csv").stat().st_mtime_ns for r in runs}
    capsys.readouterr()
    assert _sweep(out) == 0                                          # nothing left to do
    assert "4 of 4 runs finished; 0 to run" in capsys.readouterr().out
    assert stamps == {r: (out / "runs" / r / "metrics.csv").stat().st_mtime_ns for r in runs}

    assert main(["report", str(out), "--reps", "200"]) == 0
    rep = out / "report"
    for name in ("report.md", "scores.csv", "curves.png", "sparsity.png", "iqm.png", "profiles.png"):
        assert (rep / name).is_file() and (rep / name).stat().st_size > 0
    scores = {(r["method"], int(r["seed"])): float(r["score"]) for r in csv.DictReader(open(rep / "scores.csv"))}
    expected = {(m, s): _last10(out / "runs" / run_name("Hopper-v5", m, k, s))
                for m, k in (("dense", 1), ("set", 0.05)) for s in (0, 1)}
    assert scores.keys() == expected.keys()
    assert all(abs(scores[k] - expected[k]) < 1e-3 for k in expected)
    text = (rep / "report.md").read_text()
    dense = np.array([expected[("dense", s)] for s in (0, 1)])
    sparse = np.array([expected[("set", s)] for s in (0, 1)])
    dd, ds = score_decimals(dense), score_decimals(sparse)
    assert f"| Hopper-v5 | dense | 0% | 200 | 2 | {dense.mean():.{dd}f} ± {dense.std():.{dd}f} |" in text
    assert f"| Hopper-v5 | set | 95% | 200 | 2 | {sparse.mean():.{ds}f} ± {sparse.std():.{ds}f} |" in text
    assert f"{100 * sparse.mean() / dense.mean():.1f} |" in text
    assert "| dense@0% | 2 × 1 | 1.000 " in text                      # normalised by itself
    # energy beside return: FLOPs from the runs' checkpoints, CPU seconds from their metrics
    assert (rep / "energy.png").stat().st_size > 0
    from neuropath.efficiency.flops import flops_of_run
    set_flops = [flops_of_run(out / "runs" / run_name("Hopper-v5", "set", 0.05, s)).run["training"].pathway
                 for s in (0, 1)]
    dense_row = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | dense | 0% | ") and "(1.000)" in line)
    set_row = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | set | 95% | ") and "e+" in line)
    assert f"{np.mean(set_flops):.3g}" in set_row and dense_row.count("(1.000)") == 2   # FLOPs and CPU s
    # several roots in one report: here two single run directories, seed 0 of each method
    picked = [out / "runs" / run_name("Hopper-v5", m, k, 0) for m, k in (("dense", 1), ("set", 0.05))]
    assert main(["report", *map(str, picked), "--out", str(tmp_path / "two"), "--reps", "200"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "two" / "scores.csv")))
    assert sorted((r["method"], r["seed"]) for r in rows) == [("dense", "0"), ("set", "0")]


def test_an_interrupted_run_is_resumed_and_a_broken_one_moved_aside(tmp_path, capsys):
    out = tmp_path / "sw"
    assert _sweep(out, "--dry-run", seeds=("0",), methods=("dense",)) == 0
    assert not out.exists()                                           # a dry run writes nothing
    name = run_name("Hopper-v5", "dense", 1, 0)
    spec = Grid(["Hopper-v5"], ["dense"], [0.05], [0], 200,
                [a for a in TINY_SET if a != "--set"]).runs()[0]
    cfg = npth.Config().set({**spec.settings, "run_dir": str(out / "runs" / name), "progress": False})
    npth.Trainer(cfg).train(callback=lambda step, info: step < 120)   # stopped at 120, checkpointed
    (out / "runs" / "Hopper-v5__set__keep0.05__s0").mkdir(parents=True)
    (out / "runs" / "Hopper-v5__set__keep0.05__s0" / "note.txt").write_text("keep me")
    # the folder is not a sweep yet: adopt it by writing the grid (same settings)
    (out / "sweep.yaml").write_text(yaml.safe_dump({"runs": [{"name": name, "settings": spec.settings}]}))
    capsys.readouterr()
    assert _sweep(out, seeds=("0",)) == 0
    rows = read_csv(out / "runs" / name / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(20, 201, 20))   # continued, not restarted
    aside = out / "runs" / "Hopper-v5__set__keep0.05__s0.incomplete-1"
    assert (aside / "note.txt").read_text() == "keep me"
    assert len(read_csv(out / "runs" / "Hopper-v5__set__keep0.05__s0" / "metrics.csv")) == 10


def test_a_run_that_another_process_trains_is_skipped_not_restarted_or_moved(tmp_path, capsys):
    out = tmp_path / "sw"
    spec = Grid(["Hopper-v5"], ["dense"], [0.05], [0], 200, [a for a in TINY_SET if a != "--set"]).runs()[0]
    busy = out / "runs" / spec.name
    busy.mkdir(parents=True)                     # started elsewhere, no checkpoint yet ("broken" if it were idle)
    (out / "sweep.yaml").write_text(yaml.safe_dump({"runs": [{"name": spec.name, "settings": spec.settings}]}))
    with HeldRun(busy):
        capsys.readouterr()
        assert _sweep(out, seeds=("0",), methods=("dense",)) == 0
        said = capsys.readouterr().out
        assert "1 running in another process; 0 to run" in said
        assert busy.is_dir() and not list(out.glob("runs/*.incomplete-*"))     # not moved aside
        assert not (busy / "metrics.csv").exists()
        assert main(["sweep", str(out), "--dry-run"]) == 0
        assert capsys.readouterr().out.split()[:1] == ["running"]
    assert _sweep(out, seeds=("0",), methods=("dense",)) == 0       # once free, the sweep takes it over
    assert len(read_csv(busy / "metrics.csv")) == 10


def test_a_run_another_sweep_takes_between_check_and_start_is_skipped_not_failed(tmp_path, capsys, monkeypatch):
    """Two sweeps over one folder can both see a run free and both start it: the one that loses the
    lock exits 2 ("in use"). Seen on the 1M study's log as "FAILED (exit 2 ...)" for a run that was
    training fine; the sweep must say it was skipped, and not count it as a failure."""
    from neuropath.experiments import sweep
    out = tmp_path / "sw"
    spec = Grid(["Hopper-v5"], ["dense"], [0.05], [0], 200, [a for a in TINY_SET if a != "--set"]).runs()[0]
    busy = out / "runs" / spec.name
    busy.mkdir(parents=True)
    (out / "sweep.yaml").write_text(yaml.safe_dump({"runs": [{"name": spec.name, "settings": spec.settings}]}))
    real_status, calls = sweep.status, []

    def status_late(run_dir, steps):    # the other sweep's run takes the lock just after our checks
        calls.append(run_dir)
        return real_status(run_dir, steps) if len(calls) > 2 else "new"

    monkeypatch.setattr(sweep, "status", status_late)
    with HeldRun(busy):
        capsys.readouterr()
        assert _sweep(out, seeds=("0",), methods=("dense",)) == 0
        said = capsys.readouterr().out
    assert "in use by another process" in (out / "logs" / f"{spec.name}.log").read_text()   # it lost the race
    assert "FAILED" not in said and f"skipped {spec.name}: finished or started by another process" in said
    assert busy.is_dir() and not list(out.glob("runs/*.incomplete-*"))


def test_once_stopping_a_sweep_starts_no_new_run_and_stops_the_running_ones(tmp_path):
    """A worker thread that passed its status check as Ctrl-C came must not start a run that
    nobody stops (the sweep would then wait for the whole run before it could exit)."""
    import threading
    import time

    from neuropath.experiments import sweep

    started = threading.Event()
    result = {}

    def run_long():
        started.set()
        result["rc"] = sweep._run_process(["sleep", "30"], str(tmp_path / "a.log"))

    worker = threading.Thread(target=run_long)
    worker.start()
    started.wait()
    t0 = time.monotonic()
    while not sweep._RUNNING and time.monotonic() - t0 < 10:
        time.sleep(0.01)
    try:
        sweep._stop_children()
        worker.join(timeout=10)
        assert not worker.is_alive() and result["rc"] == -15         # SIGTERMed, not waited out
        t0 = time.monotonic()
        assert sweep._run_process(["sleep", "30"], str(tmp_path / "b.log")) is None
        assert time.monotonic() - t0 < 5 and not sweep._RUNNING
    finally:
        sweep._STOPPING.clear()
    assert sweep._run_process(["true"], str(tmp_path / "c.log")) == 0      # cleared: runs again


@pytest.mark.parametrize("args,needle", [
    (["--methods", "dense", "lottery"], "unknown method 'lottery'"),
    (["--envs", "NoSuchEnv-v0"], "unknown environment"),
    (["--set", "keep_ratio=0.5"], "sets it itself"),
    (["--set", "lottery:window=5"], "scope 'lottery'"),
    (["--set", "no_such_key=1"], "unknown setting"),
    (["--keep", "0"], "(0, 1]"),
    (["--methods", "rigl+grasp"], "only dapd and static take a score"),
    (["--envs", "MinAtar/Brekout-v1", "--set", "algo=dqn"], "did you mean MinAtar/Breakout-v1?"),
    (["--methods", "dapd+snap"], "unknown score 'snap'"),
])
def test_bad_grids_fail_in_one_line_and_write_nothing(tmp_path, args, needle):
    base = ["sweep", str(tmp_path / "sw"), "--envs", "Hopper-v5", "--methods", "dense", "--steps", "100"]
    assert needle in _one_line_error(base + args, tmp_path)
    assert not (tmp_path / "sw").exists()


def test_score_ablation_methods_set_the_score_and_take_their_base_methods_scoped_settings():
    grid = Grid(["Hopper-v5"], ["dapd+grasp", "static+synflow", "dapd"], [0.05], [0], 100,
                ["dapd:freeze_step=50", "static+synflow:synflow_rounds=7"]).validate()
    runs = {r.name: r.settings for r in grid.runs()}
    grasp = runs["Hopper-v5__dapd+grasp__keep0.05__s0"]
    assert grasp["pathway"] == "dapd" and grasp["score"] == "grasp" and grasp["freeze_step"] == "50"
    syn = runs["Hopper-v5__static+synflow__keep0.05__s0"]
    assert syn["pathway"] == "static" and syn["score"] == "synflow" and syn["synflow_rounds"] == "7"
    assert "freeze_step" not in syn and "score" not in runs["Hopper-v5__dapd__keep0.05__s0"]


def test_a_dqn_grid_on_minatar_and_atari_ids():
    grid = Grid(["MinAtar/Breakout-v1", "ALE/Pong-v5"], ["dense", "dapd"], [0.05], [0], 100, ["algo=dqn"]).validate()
    assert [r.name for r in grid.runs()] == ["MinAtar_Breakout-v1__dense__keep1__s0", "MinAtar_Breakout-v1__dapd__keep0.05__s0",
                                             "ALE_Pong-v5__dense__keep1__s0", "ALE_Pong-v5__dapd__keep0.05__s0"]


def test_score_tables_keep_the_digits_that_small_game_scores_need():
    # MinAtar Breakout scores ~6: "6 ± 0" would hide a 5.62 vs 6.03 difference; MuJoCo's stay integers
    assert score_decimals(np.array([5.62, 6.03])) == 2
    assert score_decimals(np.array([38.4, -12.0])) == 1
    assert score_decimals(np.array([3161.0, 2971.5])) == 0
    assert score_decimals(np.array([-150.0, 3.0])) == 0            # the largest magnitude sets the scale


def test_report_groups_runs_by_method_and_score():
    from neuropath.experiments.report import method_label
    assert method_label({"pathway": "dapd", "score": "snip"}) == "dapd"
    assert method_label({"pathway": "static", "score": "grasp"}) == "static+grasp"
    assert method_label({"pathway": "dapd", "score": "snip", "actor_score": "synflow"}) == "dapd+a:synflow/c:snip"
    assert method_label({"pathway": "rigl", "score": "grasp"}) == "rigl"            # rigl does not score
    assert method_label({"pathway": "dapd"}) == "dapd"                              # runs from before --score


def test_runs_that_differ_in_a_setting_are_reported_as_variants_not_pooled_as_seeds():
    from pathlib import Path
    from neuropath.experiments.report import RunResult, run_settings, split_variants

    def run(seed, threads=1, **sections):
        cfg = {"run": {"env": "HalfCheetah-v5", "algo": "ppo", "seed": seed, "run_dir": f"/x/{seed}",
                       "threads": threads}, "pathway": {"pathway": "dense"}, **sections}
        return RunResult(Path(f"/x/{seed}"), "HalfCheetah-v5 (ppo)", "dense", "0%", 0.0, seed, np.arange(3),
                         np.zeros(3), 3, settings=run_settings(cfg))

    old = run(0)                                             # a config.yaml from before the PPO flags existed
    plain = run(1, ppo={"bootstrap_truncated": False})       # the default written out: the same method
    flagged = [run(s, ppo={"bootstrap_truncated": True, "clip_value": False}) for s in (2, 3)]
    other_threads = run(4, threads=2)                        # how it ran, not what it learned
    split_variants([old, plain, *flagged, other_threads])
    assert old.method == plain.method == other_threads.method == "dense"
    assert {r.method for r in flagged} == {"dense[bootstrap_truncated=true,clip_value=false]"}
    lone = run(5, ppo={"bootstrap_truncated": True})        # alone in its group: nothing to tell apart
    assert split_variants([lone])[0].method == "dense"


def test_changing_an_existing_runs_settings_is_refused(tmp_path):
    out = tmp_path / "sw"
    grid = Grid(["Hopper-v5"], ["dense"], [0.05], [0], 100)
    from neuropath.experiments.sweep import merge_into
    merge_into(out, grid)
    before = (out / "sweep.yaml").read_text()
    line = _one_line_error(["sweep", str(out), "--envs", "Hopper-v5", "--methods", "dense", "--seeds", "0",
                            "--steps", "200"], tmp_path)
    assert "other settings" in line and (out / "sweep.yaml").read_text() == before


def test_sweep_on_a_local_ray_instance_and_an_unreachable_cluster(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "sw"
    assert _sweep(out, "--ray", "local", "--jobs", "1", seeds=("0",), methods=("dense",), steps=100) == 0
    name = run_name("Hopper-v5", "dense", 1, 0)
    assert [int(r["step"]) for r in read_csv(out / "runs" / name / "metrics.csv")][-1] == 100
    line = _one_line_error(["sweep", str(out), "--envs", "Hopper-v5", "--methods", "dense", "set", "--seeds", "0",
                            "--steps", "100", *TINY_SET, "--ray", "127.0.0.1:9"], tmp_path)
    assert "no Ray cluster answers at 127.0.0.1:9" in line
    assert len(read_csv(out / "runs" / name / "metrics.csv")) == 5             # the finished run is intact


def test_report_normalises_by_dense_then_by_a_random_policy_where_scores_can_be_negative():
    from types import SimpleNamespace as R

    from neuropath.experiments.report import normalisers
    groups = {("Hopper-v5", "dense", "0%"): [R(score=2000.0), R(score=3000.0)],
              ("Hopper-v5", "dapd", "95%"): [R(score=2500.0)],
              ("HalfCheetah-v5", "dense", "0%"): [R(score=5000.0), R(score=7000.0)],
              ("HalfCheetah-v5", "static", "95%"): [R(score=-100.0)],
              ("ALE/Pong-v5 (dqn)", "dense", "0%"): [R(score=-21.0), R(score=-19.0)],
              ("ALE/Pong-v5 (dqn)", "dapd", "95%"): [R(score=-15.0)],
              ("MinAtar/Breakout-v1 (dqn)", "dense", "0%"): [R(score=0.0)]}
    zeros = {"HalfCheetah-v5": -300.0, "ALE/Pong-v5": -20.0, "MinAtar/Breakout-v1": None}
    asked = []
    norm, how = normalisers(groups, lambda env: asked.append(env) or zeros[env])
    assert norm["Hopper-v5"](2500.0) == 1.0                   # dense's mean is 1; no random reference needed
    assert sorted(asked) == ["ALE/Pong-v5", "HalfCheetah-v5", "MinAtar/Breakout-v1"]
    assert norm["HalfCheetah-v5"](-300.0) == 0.0 and norm["HalfCheetah-v5"](6000.0) == 1.0
    assert norm["HalfCheetah-v5"](-100.0) > 0                 # above random, though below zero
    # dense (-20) does not beat random (-20): min-max over the runs, never a division by ~0
    assert norm["ALE/Pong-v5 (dqn)"](-21.0) == 0.0 and norm["ALE/Pong-v5 (dqn)"](-15.0) == 1.0
    assert norm["MinAtar/Breakout-v1 (dqn)"](0.0) == 0.0      # no reference, no division by a zero dense score
    assert "dense" in how and "random" in how and "min-max" in how


def test_a_random_policys_return_is_measured_on_the_real_environment_and_seeded():
    from neuropath.experiments.random_reference import random_policy_return
    first = random_policy_return.__wrapped__("HalfCheetah-v5", episodes=2)      # uncached: two real measurements
    assert first == random_policy_return.__wrapped__("HalfCheetah-v5", episodes=2)
    assert -1000 < first < 0               # control cost of random torques, no forward progress
    assert random_policy_return.__wrapped__("HalfCheetah-v5", episodes=2, seed=1) != first


def test_probability_of_improvement_against_a_reference_method():
    from neuropath.experiments.report import _improvement_lines, improvement_over
    rng = np.random.default_rng(0)
    matrix = {"dapd@95%": rng.normal(1.0, 0.05, (5, 2)),
              "dapd+grasp@95%": rng.normal(0.5, 0.05, (5, 2)),      # clearly worse on both envs
              "dapd+synflow@95%": rng.normal(1.0, 0.05, (5, 2)),    # the same distribution
              "dapd+grad@95%": rng.normal(2.0, 0.05, (2, 2)),       # better, but only two runs
              "dense@0%": rng.normal(1.5, 0.05, (5, 2))}
    probs = improvement_over(matrix, "dapd", reps=300)
    assert set(probs) == {"dapd+grasp@95%", "dapd+synflow@95%", "dapd+grad@95%", "dense@0%"}
    assert probs["dapd+grasp@95%"]["p"] == 0.0 and probs["dense@0%"]["p"] == 1.0
    assert probs["dense@0%"]["versus"] == "dapd@95%"      # dapd has one sparsity: every method is compared with it
    lo, hi = probs["dapd+synflow@95%"]["ci"]
    assert lo < 0.5 < hi
    rows = {line.split(" | ")[0].lstrip("| "): line for line in _improvement_lines(matrix, "dapd", 300) if "@" in line}
    assert rows["dapd+grasp@95%"].endswith("| worse |") and rows["dense@0%"].endswith("| better |")
    assert rows["dapd+synflow@95%"].endswith("| not distinguishable |")
    assert "too few runs" in rows["dapd+grad@95%"]          # two runs never make a verdict
    assert _improvement_lines({"dapd@95%": matrix["dapd@95%"]}, None, 300) == []   # no dense, no default reference


def test_report_pairs_each_scores_dapd_with_its_static_mask():
    from neuropath.experiments.report import _adaptation_lines, adaptation_pairs
    rng = np.random.default_rng(1)
    matrix = {"dapd@95%": rng.normal(1.0, 0.05, (4, 2)), "static@95%": rng.normal(0.2, 0.05, (4, 2)),
              "dapd+grasp@95%": rng.normal(0.3, 0.05, (4, 2)), "static+grasp@95%": rng.normal(0.9, 0.05, (4, 2)),
              "dapd+random@95%": rng.normal(0.5, 0.05, (4, 2)),        # static has no random score: no pair
              "dapd@90%": rng.normal(1.0, 0.05, (4, 2)),               # no static at 90%: no pair
              "dense@0%": rng.normal(1.0, 0.05, (4, 2))}
    assert adaptation_pairs(matrix) == {"snip@95%": ("dapd@95%", "static@95%"),
                                        "grasp@95%": ("dapd+grasp@95%", "static+grasp@95%")}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in _adaptation_lines(matrix, 300)
            if line.startswith("| ") and "%" in line.split(" | ")[0]}
    assert set(rows) == {"snip@95%", "grasp@95%"}
    assert "| 1.00 [" in rows["snip@95%"] and rows["snip@95%"].endswith("| better |")
    assert "| 0.00 [" in rows["grasp@95%"] and rows["grasp@95%"].endswith("| worse |")
    assert _adaptation_lines({"dapd@95%": matrix["dapd@95%"], "dense@0%": matrix["dense@0%"]}, 300) == []


def test_report_versus_an_unknown_method_fails_before_writing(tmp_path):
    from .conftest import TINY
    npth.Trainer(npth.Config().set({**TINY, "pathway": "dense", "steps": 100, "run_dir": str(tmp_path / "runs" / "a")})).train()
    line = _one_line_error(["report", str(tmp_path / "runs"), "--versus", "dapd+snap", "--out", str(tmp_path / "rep")],
                           tmp_path)
    assert "--versus dapd+snap" in line and "finished runs are dense" in line and not (tmp_path / "rep").exists()
    # a sweep where nothing has finished yet says so instead of listing no methods
    cfg = tmp_path / "runs" / "a" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("steps: 100\n", "steps: 100000\n"))
    line = _one_line_error(["report", str(tmp_path / "runs"), "--versus", "dapd", "--out", str(tmp_path / "rep")],
                           tmp_path)
    assert line.endswith("no run has finished yet") and not (tmp_path / "rep").exists()


def test_a_yes_no_setting_becomes_a_flag_without_a_value(tmp_path):
    from neuropath.cli import build_parser
    from neuropath.experiments.sweep import RunSpec, command
    spec = RunSpec("HalfCheetah-v5__dense__keep1__s0", {"env": "HalfCheetah-v5", "pathway": "dense", "seed": 0,
                   "steps": 100, "algo": "ppo", "bootstrap_truncated": "true", "clip_value": "false"})
    cmd = command(tmp_path, spec, "new")
    assert "--bootstrap-truncated" in cmd and "--no-clip-value" in cmd and "true" not in cmd and "false" not in cmd
    args = build_parser().parse_args(cmd[cmd.index("train"):])      # argparse accepts what the sweep runs
    assert args.bootstrap_truncated is True and args.clip_value is False


def test_threads_per_run_reach_the_run_and_its_openmp_environment(tmp_path):
    out = tmp_path / "sw"
    assert _sweep(out, "--threads", "2", "--jobs", "1", seeds=("0",), methods=("dense",)) == 0
    cfg = yaml.safe_load((out / "runs" / run_name("Hopper-v5", "dense", 1, 0) / "config.yaml").read_text())
    assert cfg["run"]["threads"] == 2
    from neuropath.experiments import sweep
    assert sweep._run_process(["sh", "-c", "echo $OMP_NUM_THREADS $MKL_NUM_THREADS"], str(tmp_path / "t.log"), 3) == 0
    assert (tmp_path / "t.log").read_text().split() == ["3", "3"]
    assert "--threads must be >= 1" in _one_line_error(["sweep", str(tmp_path / "sw2"), "--envs", "Hopper-v5",
                                                         "--threads", "0"], tmp_path)
    assert not (tmp_path / "sw2").exists()


def test_cpu_seconds_compare_only_runs_on_the_usual_thread_count(tmp_path):
    """A dense run on two threads spends ~1.4x the CPU time for the same work: pooled with one-thread runs it
    would inflate dense's CPU seconds and flatter every sparse method's ratio."""
    import shutil
    from .conftest import TINY
    runs = tmp_path / "runs"
    for name, pathway in (("d0", "dense"), ("d1", "dense"), ("p0", "static")):
        npth.Trainer(npth.Config().set({**TINY, "pathway": pathway, "steps": 100, "threads": 1,
                                        "seed": int(name[1]), "run_dir": str(runs / name)})).train()
    shutil.copytree(runs / "d1", runs / "d2")
    cfg = (runs / "d2" / "config.yaml").read_text()
    assert "threads: 1\n" in cfg and "seed: 1\n" in cfg
    (runs / "d2" / "config.yaml").write_text(cfg.replace("threads: 1\n", "threads: 2\n").replace("seed: 1\n", "seed: 2\n"))
    rows = read_csv(runs / "d2" / "metrics.csv")
    with open(runs / "d2" / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "cpu_seconds": "1000000"} for r in rows)
    assert main(["report", str(runs), "--out", str(tmp_path / "rep"), "--reps", "200"]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    cpu = {n: float(read_csv(runs / n / "metrics.csv")[-1]["cpu_seconds"]) for n in ("d0", "d1", "p0")}
    dense_row = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | dense | 0% | ") and "e+" in line)
    assert f"{(cpu['d0'] + cpu['d1']) / 2:.3g} (1.000)" in dense_row
    static_row = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | static | 95% | ") and "e+" in line)
    assert f"({cpu['p0'] / ((cpu['d0'] + cpu['d1']) / 2):.3f})" in static_row
    assert "left out: Hopper-v5 dense s2 (2 threads)" in text
