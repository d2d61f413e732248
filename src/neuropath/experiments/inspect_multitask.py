"""``neuropath inspect`` for a multi-task run: how much the tasks' pathways share.

Overlap of tasks i and j = |m_i ∧ m_j| / |m_i|: the fraction of task i's pathway that task j also
uses (per layer, and over the whole network, where every task keeps the same k weights so the
matrix is symmetric). Also the parameters each task runs (its active weights plus the biases) and
the union of all pathways (what the shared network must store), and each task's success curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..training import checkpoint
from ..training.checkpoint import network_names
from ..training.config import score_summary
from ..training.logging import read_csv
from ..training.run_dir import load_run_config


def task_masks(state: dict, prefix: str) -> dict[str, torch.Tensor]:
    """``{layer: bool [T, out, in]}`` of the network under ``prefix`` (dense layers: all ones)."""
    algo = state["algo"]
    out = {}
    for key, mask in algo.items():
        if key.startswith(prefix) and key.endswith(".mask"):
            extra = algo.get(key[:-len("mask")] + "_extra_state", {})
            out[key[len(prefix):-len(".mask")]] = mask if extra.get("use_mask", True) else torch.ones_like(mask)
    return out


def overlap(masks: dict[str, torch.Tensor]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Overall and per-layer overlap matrices [T, T] (row i: shares of task i's pathway)."""
    def matrix(m: torch.Tensor) -> np.ndarray:
        flat = m.flatten(1).float()                          # [T, weights]
        inter = flat @ flat.T
        size = flat.sum(1, keepdim=True).clamp(min=1)
        return (inter / size).numpy()
    per_layer = {name: matrix(m) for name, m in masks.items()}
    overall = matrix(torch.cat([m.flatten(1) for m in masks.values()], dim=1))
    return overall, per_layer


def parameter_counts(state: dict, prefix: str, masks: dict[str, torch.Tensor]) -> tuple[list[int], int, int]:
    """Per task (active weights + biases), the union of the pathways (+ biases), and the dense total."""
    algo = state["algo"]
    biases = sum(algo[f"{prefix}{name}.bias"][0].numel() for name in masks)
    per_task = [int(sum(int(m[t].sum()) for m in masks.values())) + biases
                for t in range(next(iter(masks.values())).shape[0])]
    union = int(sum(int(m.any(0).sum()) for m in masks.values())) + biases
    dense = int(sum(m[0].numel() for m in masks.values())) + biases
    return per_task, union, dense


def inspect_multitask(run_dir: Path, plot: Path | None = None) -> str:
    cfg = load_run_config(run_dir)
    ckpt = checkpoint.latest(run_dir)
    state = checkpoint.load_state(ckpt)
    tasks = checkpoint.read_meta(ckpt).get("tasks") or [str(t) for t in range(state["algo"]["log_alpha"].shape[0])]
    rows = read_csv(run_dir / "metrics.csv")
    lines = [f"run: {run_dir}", f"benchmark {cfg.run.benchmark}, pathway {cfg.pathway.pathway}, "
             f"score {score_summary(cfg)}, "
             f"heads {cfg.run.heads}, checkpoint at step {checkpoint.read_meta(ckpt)['step']}", ""]
    overall_actor = None
    for net in network_names(state):           # every trained network: BCQ's VAE and IQL's V too
        masks = task_masks(state, f"{net}.")
        overall, per_layer = overlap(masks)
        per_task, union, dense = parameter_counts(state, f"{net}.", masks)
        if net == "actor":
            overall_actor = overall
        off = overall[~np.eye(len(overall), dtype=bool)]
        weights = [int(sum(int(m[t].sum()) for m in masks.values())) for t in range(len(per_task))]
        dense_w = int(sum(m[0].numel() for m in masks.values()))
        lines += [f"## {net}: parameters per task {min(per_task):,}–{max(per_task):,} (mean {np.mean(per_task):,.0f}), "
                  f"union of the pathways {union:,}, dense {dense:,}",
                  f"forward FLOPs per sample and task (1 MAC = 2 FLOPs): pathway {2 * np.mean(weights):,.0f}, "
                  f"dense {2 * dense_w:,} ({dense_w / max(np.mean(weights), 1):.1f}x)",
                  f"overlap between tasks (share of a task's pathway another task also uses): "
                  f"mean {off.mean():.3f}, min {off.min():.3f}, max {off.max():.3f}" if off.size else "one task",
                  "per layer (mean off-diagonal): " + ", ".join(
                      f"{name} {m[~np.eye(len(m), dtype=bool)].mean():.3f}" for name, m in per_layer.items()), ""]
    short = [t.replace("-v3", "")[:14] for t in tasks]
    lines += ["actor overlap matrix (row i: share of task i's pathway that task j also uses):",
              "".ljust(15) + " ".join(s[:6].rjust(6) for s in short)]
    for name, row in zip(short, overall_actor):
        lines.append(name.ljust(15) + " ".join(f"{v:6.2f}" for v in row))
    if rows:
        last = rows[-1]
        lines += ["", f"success at step {last['step']}: mean {float(last['success_mean']):.2f}; " + ", ".join(
            f"{s} {float(last['success_' + t.replace('-', '_')]):.2f}" for s, t in zip(short, tasks))]
    if plot is not None:
        _plot(plot, overall_actor, short, rows, tasks)
        lines.append(f"plot: {plot}")
    return "\n".join(lines)


def _plot(path: Path, matrix: np.ndarray, short: list[str], rows: list[dict], tasks: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 5))
    im = ax0.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax0.set_xticks(range(len(short)), short, rotation=60, ha="right", fontsize=7)
    ax0.set_yticks(range(len(short)), short, fontsize=7)
    ax0.set_title("actor pathways: share of row task's weights used by column task", fontsize=9)
    fig.colorbar(im, ax=ax0, fraction=0.046)
    if rows:
        steps = [int(r["step"]) for r in rows]
        for s, t in zip(short, tasks):
            ax1.plot(steps, [float(r["success_" + t.replace("-", "_")]) for r in rows], label=s, lw=1)
        ax1.plot(steps, [float(r["success_mean"]) for r in rows], "k", lw=2.5, label="mean")
        ax1.set_xlabel("environment steps per task")
        ax1.set_ylabel("success rate")
        ax1.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
