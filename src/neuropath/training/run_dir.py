"""A run's directory: where a new run goes (never into another run's folder), how every loop starts one
(threads, seeds), the device it asks for, and reading its ``config.yaml`` back (`load_run_config`) and
its resume settings (`resume_settings`). Every loop and every command that reads runs imports this, not a
training loop.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import UsageError
from . import checkpoint, run_lock
from .config import Config, fill_legacy


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(name)


def default_run_dir(cfg: Config, root: Path = Path("runs")) -> Path:
    """A new folder under ``runs/`` named by what is trained (env, benchmark or dataset), method, seed, time."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if cfg.offline.dataset is not None:
        what = f"offline__{cfg.offline.dataset}__{cfg.run.algo}"
    else:
        what = cfg.run.benchmark or cfg.run.env
    env = re.sub(r"[^A-Za-z0-9_.-]", "_", what)
    base = root / f"{env}__{cfg.pathway.pathway}__s{cfg.run.seed}__{stamp}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path


def check_new_run_dir(run_dir: Path) -> None:
    """A new run never writes into another run: the folder must be absent or empty (a lock file
    left by a process that died before writing anything does not count)."""
    run_lock.ensure_free(run_dir)
    if run_dir.exists() and any(p.name != run_lock.LOCK_NAME for p in run_dir.iterdir()):
        raise UsageError(f"run directory {str(run_dir)!r} exists and is not empty; pick another "
                         "--run-dir or continue it with --resume")


def start_run(cfg: Config, resume_from: Path | None) -> Path:
    """What every loop does first: pick the run directory (refusing a non-empty new one), set torch's
    threads and seed python, numpy and torch. Returns the run directory."""
    r = cfg.run
    run_dir = resume_from or (Path(r.run_dir) if r.run_dir else default_run_dir(cfg))
    if resume_from is None:
        check_new_run_dir(run_dir)
    if r.threads:
        torch.set_num_threads(r.threads)
    random.seed(r.seed)
    np.random.seed(r.seed)
    torch.manual_seed(r.seed)
    return run_dir


def load_run_config(run_dir: Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run directory {str(run_dir)!r} does not exist")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UsageError(f"{str(run_dir)!r} is not a neuropath run directory (no config.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
        data.pop("neuropath", None)
        fill_legacy(data)
        offline = data.get("offline") or {}
        if offline.get("dataset") is None and offline.get("algo") == "iql":
            offline["algo"] = "sac"      # runs before 0.2 stored the offline default "iql" for every run
        return Config.from_dict(data)
    except UsageError as exc:
        raise UsageError(f"{str(path)!r} is corrupt: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable config is corrupt
        raise UsageError(f"{str(path)!r} is corrupt: {type(exc).__name__}") from None


def resume_settings(run_dir: str | Path, *, steps: int | None = None, threads: int | None = None,
                    progress: bool | None = None, device: str | None = None) -> tuple[Config, Path]:
    """What every loop's ``resume`` starts from: the run's config with a new step budget, threads, progress
    bar or device, and its latest checkpoint. Refuses (one line) a run another process holds and a
    ``steps`` below the step the run has already reached."""
    run_dir = Path(run_dir)
    run_lock.ensure_free(run_dir)
    cfg = load_run_config(run_dir)
    ckpt = checkpoint.latest(run_dir)
    overrides = {"steps": steps, "threads": threads, "progress": progress, "device": device}
    cfg.set({k: v for k, v in overrides.items() if v is not None})
    done = checkpoint.read_meta(ckpt).get("step", 0)
    if steps is not None and cfg.run.steps < done:
        raise UsageError(f"the run is already at step {done}; --steps must be at least that")
    return cfg, ckpt


@dataclass(frozen=True)
class LatestCheckpoint:
    """What a command that reads a trained run needs: its config, its latest checkpoint's folder, the
    checkpoint's ``meta.json`` and its state (loaded on the CPU)."""
    cfg: Config
    path: Path
    meta: dict[str, Any]
    state: dict[str, Any]


def latest_checkpoint(run_dir: str | Path) -> LatestCheckpoint:
    """A run's config and latest checkpoint, each failure (no run, no checkpoint, unreadable files) in one
    line: the start of every policy loader and FLOP counter."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    path = checkpoint.latest(run_dir)
    return LatestCheckpoint(cfg, path, checkpoint.read_meta(path), checkpoint.load_state(path))
