"""Smoke runs of the benchmark scripts at tiny settings: a script whose code rots fails here, not in a
long measurement (their numbers are benchmarks, not tests)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("sparse", [[], ["--sparse"]], ids=["masked", "sparse"])
def test_entry_rule_cost(sparse):
    out = _run("entry_rule_cost.py", "--hidden", "32", "32", "--keep", "0.1", "--swaps", "2", "--rounds", "1",
               "--updates", "2", *sparse)
    young = {line.split()[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "young entries" in line}
    assert young["global"] == 0 and young["own-age"] > 0 and "own-age / global:" in out


def test_sparse_update():
    out = _run("sparse_update.py", "--threads", "1", "--rounds", "1", "--updates", "2", "--densities", "0.05")
    assert "fused vs layer by layer" in out and "0.05" in out.splitlines()[-1]


def test_run_cost(tmp_path):
    out = _run("run_cost.py", "--env", "Hopper-v5", "--steps", "400", "--skip", "200", "--keep", "0.1",
               "--out", str(tmp_path), "--", "--hidden", "32", "32", "--batch-size", "32", "--seed-steps", "100",
               "--init-steps", "100", "--eval-every", "200", "--eval-episodes", "1", "--window", "200",
               "--score-batch", "32")
    lines = {line.split()[0]: line for line in out.splitlines() if "ms/step" in line}
    assert set(lines) == {"dense", "dapd"} and "dense / dapd:" in out
    assert all(float(line.split()[1]) > 0 for line in lines.values())
    assert (tmp_path / "dapd" / "metrics.csv").exists()


@pytest.mark.parametrize("threads", ["1", "2"])
def test_paper1m_study_script(tmp_path, threads):
    """The 1M study's driver at 200 steps: a snapshot of HEAD, both workers (one 2-thread worker with
    PAPER1M_THREADS=2) started only after the process they are told to wait for, tier 1 (dense; DAPD and the
    authors' variant on Hopper) and a tier-2 stage (dense on Walker2d) each finished from that snapshot; a rerun trains nothing again, and a finished
    record seeded from the records folder lands in its own sweep and is not trained again either."""
    import os
    import shutil
    import time

    from neuropath.training.logging import read_csv
    env = {**os.environ, "PAPER1M_STEPS": "200", "PAPER1M_ENVS": "Hopper-v5", "PAPER1M_SEEDS": "0",
           "PAPER1M_SET": "seed_steps=50 init_steps=50 eval_every=100 eval_episodes=1 checkpoint_every=100 "
                          "batch_size=32 score_batch=32 window=100",
           "PAPER1M_TIER2": "paper1m-walker|Walker2d-v5|dense|0",
           "PAPER1M_RECORDS": "", "PAPER1M_PYTHON": sys.executable, "PAPER1M_WAIT": "1", "PAPER1M_THREADS": threads}
    start = time.time()
    blocker = subprocess.Popen(["sleep", "6"])
    env["PAPER1M_AFTER"] = f"{blocker.pid} {blocker.pid}"

    def study() -> None:
        proc = subprocess.run(["bash", str(BENCH / "paper1m.sh"), str(tmp_path)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    study()
    released = start + 6                       # the blocker lived at least this long
    del env["PAPER1M_AFTER"]
    runs = sorted(tmp_path.glob("paper1m*/runs/*"))
    assert sorted(f"{r.parent.parent.name}/{r.name}" for r in runs) == [
        "paper1m-dense/Hopper-v5__dense__keep1__s0", "paper1m-walker/Walker2d-v5__dense__keep1__s0",
        "paper1m/Hopper-v5__dapd@authors__keep0.05__s0", "paper1m/Hopper-v5__dapd__keep0.05__s0"]
    assert all([row["step"] for row in read_csv(r / "metrics.csv")] == ["100", "200"] for r in runs)
    assert all((r / "config.yaml").stat().st_mtime >= released - 1 for r in runs)   # none before the wait
    assert len(list(tmp_path.glob("src-*/src/neuropath/cli.py"))) == 1          # the code the runs used
    import yaml
    # with 2 threads: dense runs one at a time on both, the sparse-kernel runs two at a time on one each
    on = {r.name.split("__")[1]: yaml.safe_load((r / "config.yaml").read_text())["run"]["threads"] for r in runs}
    assert on == {"dense": int(threads), "dapd": 1, "dapd@authors": 1}
    if threads != "1":
        return                                 # seeding records does not depend on the layout (saves CI time)
    # A new machine: the Walker2d run exists only as a record; it goes back into its sweep, finished.
    records = tmp_path / "records"
    walker = tmp_path / "paper1m-walker" / "runs" / "Walker2d-v5__dense__keep1__s0"
    shutil.copytree(walker, records / walker.name)
    shutil.rmtree(walker)
    env["PAPER1M_RECORDS"] = str(records)
    study()
    assert (walker / "metrics.csv").read_text() == (records / walker.name / "metrics.csv").read_text()
    logs = "".join(p.read_text() for p in tmp_path.glob("paper1m*.log"))
    assert logs.count("finished Hopper-v5__") == 3 and logs.count("finished Walker2d-v5__") == 1  # none twice
