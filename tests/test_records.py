"""Run records (benchmarks/run_records.py) of a finished sweep, and the report built from the records alone."""

import json
import subprocess
import sys
from pathlib import Path

from neuropath.cli import main
from neuropath.experiments import report as R
from neuropath.experiments.sweep import run_name

from .test_sweep import _sweep


def test_records_keep_freezes_and_flops_and_the_report_reads_them(tmp_path):
    """benchmarks/run_records.py on a finished sweep (dense, DAPD, DAPD as the authors run it): the records hold
    the freeze events and FLOP counts, and a report on the records alone has the freezes, the FLOPs, the
    variant's label, several references and a step window."""
    out = tmp_path / "sw"
    assert _sweep(out, "--set", "dapd:freeze_step=100", "--set", "init_steps=50", "--set", "score_batch=16",
                  "--set", "window=100", methods=("dense", "dapd", "dapd@authors"), seeds=("0",)) == 0
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run_records.py"
    rec = tmp_path / "records"
    proc = subprocess.run([sys.executable, str(script), str(out), str(rec)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "3 record(s) written" in proc.stdout, proc.stdout + proc.stderr
    authors = rec / run_name("Hopper-v5", "dapd@authors", 0.05, 0)
    assert sorted(p.name for p in authors.iterdir()) == ["config.yaml", "flops.json", "freeze.jsonl", "metrics.csv"]
    assert main(["report", str(rec), "--versus", "dense", "dapd", "--at", "100:200", "--reps", "200",
                 "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| Hopper-v5 | dapd@authors | 95% | s0: 100 (reached freeze step 100) |" in text
    assert "## Probability of improvement over dense" in text and "## Probability of improvement over dapd" in text
    assert "## At steps 100–200" in text
    flops_row = next(line for line in text.splitlines() if line.startswith("| Hopper-v5 | dapd@authors | 95% | ")
                     and "e+" in line)
    assert "(" in flops_row.split("|")[4]                              # FLOPs relative to dense, from flops.json
    assert main(["report", str(rec), "--at", "300:100", "--out", str(tmp_path / "bad")]) == 2


def _keep_rows(path, last_step, tail=""):
    """metrics.csv as a run cut at ``last_step`` left it (``tail``: a row it was writing when read)."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if int(x.split(",", 1)[0]) <= last_step) + tail)


def test_cut_records_keep_an_unfinished_run_as_far_as_it_got_and_count_in_the_windows_it_passed(tmp_path):
    """``run_records.py --cut``: an unfinished run is recorded as far as it got (never a half-written row), a run
    restarted from zero never shrinks its cut record, the report scores the cut run in a window it passed but not in
    the final table, and once the run finishes its finished record is written and the cut one removed."""
    out = tmp_path / "sw"
    assert _sweep(out, "--set", "dapd:freeze_step=100", "--set", "init_steps=50", "--set", "score_batch=16",
                  "--set", "window=100", methods=("dense", "dapd"), seeds=("0",)) == 0
    dense = out / "runs" / run_name("Hopper-v5", "dense", 1, 0)
    full = (dense / "metrics.csv").read_text()
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run_records.py"
    rec, cut = tmp_path / "records", tmp_path / "cut"

    def records() -> str:
        proc = subprocess.run([sys.executable, str(script), str(out), str(rec), "--cut", str(cut)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    _keep_rows(dense / "metrics.csv", 120, tail="140,12.5")           # cut at 120, writing the 140 row
    said = records()
    kept = cut / dense.name
    assert f"cut record {kept} at 120 of 200 steps" in said and "1 record(s) written" in said, said
    assert json.loads((kept / "cut.json").read_text())["step"] == 120
    text = (kept / "metrics.csv").read_text()
    assert text.endswith("\n") and text.splitlines()[-1].startswith("120,")
    assert not (rec / dense.name).exists() and not (cut / run_name("Hopper-v5", "dapd", 0.05, 0)).exists()

    _keep_rows(dense / "metrics.csv", 40)                            # a new machine: restarted from zero
    assert f"kept {kept} (120 steps; the run is at 40)" in records()
    assert (kept / "metrics.csv").read_text() == text

    assert main(["report", str(rec), str(cut), "--versus", "dense", "--out", str(tmp_path / "rep")]) == 2
    assert main(["report", str(rec), str(cut), "--versus", "dense", "--at", "60:120", "--reps", "200",
                 "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    final, window = report.split("## At steps 60–120")
    assert "| Hopper-v5 | dense |" not in final and "| Hopper-v5 | dapd |" in final
    assert "count here too (1): Hopper-v5 dense s0" in window and "| Hopper-v5 | dense | 0% |" in window
    assert "## Probability of improvement over dense" in window
    assert f"cut/{dense.name}" in report.split("Unfinished runs, not in the final scores")[1]
    done, partial = R.load_all_runs(rec)[0], R.load_all_runs(cut)[1]
    fig = R.curves_figure(R.group_runs(done), cut=partial)         # the cut run drawn as far as it got
    lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    assert list(lines["dense 0% s0, unfinished (120)"].get_xdata()) == [20, 40, 60, 80, 100, 120]

    (dense / "metrics.csv").write_text(full)                         # the run finishes
    said = records()
    assert f"removed {kept} (its run finished" in said and (rec / dense.name / "metrics.csv").read_text() == full
    assert not kept.exists()
