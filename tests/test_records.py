"""Run records (benchmarks/run_records.py) of a finished sweep, and the report built from the records alone."""

import subprocess
import sys
from pathlib import Path

from neuropath.cli import main
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
