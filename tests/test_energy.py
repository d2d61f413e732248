"""Energy columns of a run: CPU seconds always, joules where a meter measures them."""

import sys
import types

import torch

import neuropath as npth
from neuropath.engine.energy import EnergyMeter
from neuropath.training.logging import read_csv

from .conftest import TINY


def test_runs_record_cpu_seconds_across_a_resume_and_say_nothing_was_measured(tmp_path):
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "steps": 400, "run_dir": str(run)})).train()
    first = read_csv(run / "metrics.csv")
    npth.Trainer.resume(run, steps=800).train()
    rows = read_csv(run / "metrics.csv")
    cpu = [float(r["cpu_seconds"]) for r in rows]
    assert rows[:len(first)] == first and len(rows) == 4
    assert cpu[0] > 0 and all(b > a for a, b in zip(cpu, cpu[1:]))     # continues, never restarts at 0
    assert all(r["energy_mode"] == "none" and r["energy_j"] == "" for r in rows)


def test_a_run_from_before_the_energy_columns_resumes_into_one_consistent_file(tmp_path):
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "steps": 200, "run_dir": str(run)})).train()
    path = run / "metrics.csv"
    lines = path.read_text().splitlines()
    old = [",".join(line.split(",")[:10]) for line in lines]            # drop the three new columns
    path.write_text("\n".join(old) + "\n")
    npth.Trainer.resume(run, steps=400).train()
    rows = read_csv(path)
    assert [r["step"] for r in rows] == ["200", "400"] and all(None not in r for r in rows)
    assert rows[0]["cpu_seconds"] == "" and float(rows[1]["cpu_seconds"]) > 0


def test_a_measuring_meter_accumulates_joules_over_windows(monkeypatch):
    """zeus is an optional extra and this machine has no RAPL/NVML: a stand-in monitor with
    zeus's window API checks the bookkeeping (the hardware path itself needs such a machine)."""
    windows = []

    class Monitor:
        def __init__(self, gpu_indices, cpu_indices=None):
            self.gpu, self.cpu = gpu_indices, cpu_indices

        def begin_window(self, name):
            windows.append(("begin", name))

        def end_window(self, name):
            windows.append(("end", name))
            return types.SimpleNamespace(total_energy=2.5)

    module = types.ModuleType("zeus.monitor")
    module.ZeusMonitor = Monitor
    monkeypatch.setitem(sys.modules, "zeus", types.ModuleType("zeus"))
    monkeypatch.setitem(sys.modules, "zeus.monitor", module)
    meter = EnergyMeter(torch.device("cpu")).start()
    assert meter.mode == "measured-rapl"
    assert meter.joules() == 2.5 and meter.joules() == 5.0
    assert windows[0] == ("begin", EnergyMeter.WINDOW) and windows.count(("end", EnergyMeter.WINDOW)) == 2


def test_without_zeus_nothing_is_claimed_as_measured(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)                # import fails
    meter = EnergyMeter(torch.device("cpu")).start()
    assert meter.mode == "none" and meter.joules() is None and meter.cpu_seconds() >= 0
