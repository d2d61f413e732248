"""``neuropath lottery RUN --n 3``: many lottery sub-networks from one warm-up state (paper Fig. 3).

From a DAPD run's latest checkpoint (ideally one taken in warm-up), draw ``n`` pathways: each draw
re-scores the networks with SNIP on its own fresh batch of the run's most recent data (a K = 1
score, not the run's moving average, so draws differ by their data), freezes that pathway and
trains it for ``--steps`` more steps in its own run directory ``OUT/draw-i`` (a copy of the run
at the checkpoint). Reported: how much the draws' actor pathways overlap, with each other and with
the run's own mask, and each draw's final return.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..pathways import masked_layers, unmasked
from ..training import checkpoint
from ..training.logging import read_csv
from ..training.loops.sac import Trainer
from ..training.run_dir import load_run_config


def _copy_run_at_checkpoint(src: Path, ckpt: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for name in ("config.yaml", "metrics.csv", "pathway.jsonl", "episodes.csv"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    root = checkpoint.checkpoint_root(dst)
    root.mkdir(parents=True)
    shutil.copytree(ckpt, root / ckpt.name)
    (root / "latest").write_text(ckpt.name)


def _actor_mask(trainer: Trainer) -> torch.Tensor:
    return torch.cat([m.mask[0].flatten() for m in masked_layers(trainer.algo.actor).values()])


def run_lottery(run_dir: Path, n: int, steps: int, out: Path | None = None) -> str:
    if n < 2:
        raise UsageError(f"--n must be >= 2 (draws to compare), got {n}")
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    cfg = load_run_config(run_dir)
    if cfg.run.benchmark is not None or cfg.pathway.pathway != "dapd":
        raise UsageError(f"lottery needs a single-task dapd run; {str(run_dir)!r} is "
                         f"{cfg.run.benchmark or cfg.pathway.pathway}")
    ckpt = checkpoint.latest(run_dir)
    start = int(checkpoint.read_meta(ckpt)["step"])
    out = out or run_dir / "lottery"
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{str(out)!r} exists and is not empty; pass another --out")
    p = cfg.pathway
    masks, returns, original = [], [], None
    for i in range(n):
        draw = out / f"draw-{i}"
        _copy_run_at_checkpoint(run_dir, ckpt, draw)
        trainer = Trainer.resume(draw, steps=start + steps, progress=False)
        if original is None:
            original = _actor_mask(trainer)
        torch.manual_seed(10_007 * (i + 1))                 # this draw's scoring batch
        losses = trainer.algo.losses()
        with unmasked(trainer.algo):
            for name, pw in trainer.pathways.items():
                pw.method.window = {}                       # K = 1: this draw's batch alone
                pw.update(start, lambda n_=name: losses[n_](trainer.buffer.sample_recent(p.score_batch, p.window)))
                pw.schedule.freeze(start, f"lottery draw {i}")
        masks.append(_actor_mask(trainer))
        trainer.train()
        rows = [r for r in read_csv(draw / "metrics.csv") if int(r["step"]) > start]
        returns.append(float(rows[-1]["return_mean"]) if rows else float("nan"))
    k = float(original.sum())
    share = np.array([[float((a & b).sum()) / k for b in masks] for a in masks])
    with_run = [float((m & original).sum()) / k for m in masks]
    lines = [f"lottery: {n} pathways drawn from {ckpt} (step {start}), each trained {steps} more steps",
             f"actor pathway: {int(k):,} weights per draw", "",
             "| draw | shared with the run's own mask | final eval return | run dir |", "|---|---|---|---|"]
    lines += [f"| {i} | {with_run[i]:.3f} | {returns[i]:.1f} | {out / f'draw-{i}'} |" for i in range(n)]
    off = share[~np.eye(n, dtype=bool)]
    lines += ["", f"share of one draw's actor pathway that another draw also uses: mean {off.mean():.3f} "
              f"(min {off.min():.3f}, max {off.max():.3f})",
              f"final returns: mean {np.mean(returns):.1f} ± {np.std(returns):.1f}"]
    (out / "lottery.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines)
