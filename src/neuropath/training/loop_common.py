"""What `Run` builds on: resuming a trainer class, the run's config file, every RNG's state."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .._version import __version__
from . import checkpoint
from .config import Config
from .run_dir import resume_settings


def resume_trainer(cls, run_dir: str | Path, *, steps: int | None = None, threads: int | None = None,
                   progress: bool | None = None, device: str | None = None):
    """``cls`` rebuilt from the run's ``config.yaml`` (with a new step budget, threads, progress bar or
    device: `resume_settings`) and loaded from its latest checkpoint."""
    cfg, path = resume_settings(run_dir, steps=steps, threads=threads, progress=progress, device=device)
    trainer = cls(cfg, _resume_from=Path(run_dir))
    trainer.load_checkpoint(path)
    return trainer


def write_config(cfg: Config, run_dir: Path) -> None:
    """The run's ``config.yaml`` (with its directory), written at every start: a resumed run records
    its new step budget."""
    data = cfg.to_dict()
    data["run"]["run_dir"] = str(run_dir)
    checkpoint.write_text_atomic(run_dir / "config.yaml", yaml.safe_dump({"neuropath": __version__, **data},
                                                                        sort_keys=False))


def rng_state(rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Every random stream a loop draws from (the run's own numpy generator ``rng`` included), CUDA's too:
    one copy for all loops, so that a resumed run continues exactly on a GPU as on the CPU."""
    out = {"python": random.getstate(), "numpy_global": np.random.get_state(), "torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    if rng is not None:
        out["numpy"] = rng.bit_generator.state
    return out


def set_rng_state(state: dict[str, Any], rng: np.random.Generator | None = None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy_global"])
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():     # absent in older checkpoints
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if rng is not None and "numpy" in state:
        rng.bit_generator.state = state["numpy"]
