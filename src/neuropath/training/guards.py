"""What stops a run in one line instead of writing bad state, and what bounds the loss of a kill.

Every training loop uses these: a NaN or infinite loss or weight ends the run with a `RunFault` that
names the last good checkpoint (never a non-finite checkpoint), and `CheckpointClock` adds checkpoints by
wall time (``--checkpoint-minutes``) to the ones by step count, so a kill costs at most that much work.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import RunFault


def last_good(run_dir: Path) -> str:
    """What a fault leaves: the checkpoint ``latest`` points at, or that there is none."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    return f"the last good checkpoint, {pointer.read_text().strip()}, is kept" if pointer.is_file() else \
        "no checkpoint was written"


def check_finite_losses(metrics: dict[str, torch.Tensor], step: int, run_dir: Path) -> None:
    """Stop a diverged run in one line (`RunFault`) when a logged loss is NaN or infinite."""
    bad = sorted(k for k, v in metrics.items() if not bool(torch.isfinite(torch.as_tensor(v)).all()))
    if bad:
        raise RunFault(f"training diverged at step {step}: {', '.join(bad)} not finite; {last_good(run_dir)}")


def check_finite_weights(module: torch.nn.Module, step: int, run_dir: Path) -> None:
    """Never write a checkpoint of non-finite weights: stop in one line instead, ``latest`` left on the last
    good one."""
    bad = [n for n, p in module.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        raise RunFault(f"training diverged at step {step}: non-finite weights in {', '.join(bad[:3])}{more}; "
                       f"{last_good(run_dir)}")


class CheckpointClock:
    """Due every ``minutes`` of wall time since the last checkpoint (0 = never)."""

    def __init__(self, minutes: float) -> None:
        self.minutes = minutes
        self.reset()

    def reset(self) -> None:
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.minutes > 0 and time.monotonic() - self.last >= 60 * self.minutes
