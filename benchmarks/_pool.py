"""Shared by the benchmark drivers: run 1-thread ``neuropath`` processes a few at a time, skip and resume."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from pathlib import Path


def metric_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(path / "metrics.csv"))) if (path / "metrics.csv").is_file() else []


def finished(path: Path, steps: int) -> bool:
    rows = metric_rows(path)
    return bool(rows) and int(rows[-1]["step"]) >= steps


def resumable(path: Path) -> bool:
    """True if ``path`` has a checkpoint to resume from; a folder that never checkpointed is removed."""
    if (path / "checkpoints" / "latest").is_file():
        return True
    if path.exists():
        import shutil
        shutil.rmtree(path)
    return False


def run_pool(todo: list[tuple[Path, list[str]]], jobs: int) -> None:
    """Run each (run folder, command) with its log beside the folder, ``jobs`` at a time."""
    print(f"{len(todo)} runs to do, {jobs} at a time", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    todo = list(todo)
    running: list[tuple[subprocess.Popen, str]] = []
    while todo or running:
        while todo and len(running) < jobs:
            path, cmd = todo.pop(0)
            path.parent.mkdir(parents=True, exist_ok=True)
            log = open(path.parent / f"{path.name}.log", "a")
            running.append((subprocess.Popen(cmd, stdout=log, stderr=log, env=env), path.name))
            print(f"{time.strftime('%H:%M:%S')} started {path.name}", flush=True)
        time.sleep(5)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                print(f"{time.strftime('%H:%M:%S')} finished {name} (exit {proc.returncode})", flush=True)
