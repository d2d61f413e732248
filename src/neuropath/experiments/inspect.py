"""``neuropath inspect``: what a run's pathway looks like and how it got there.

Reads the run's latest checkpoint (masks) and ``pathway.jsonl`` (every mask event) and
``metrics.csv`` (evaluations); prints per-layer sparsity, active weights, the entries each
warm-up update changed, when and why the masks froze; plots it all in one PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..pathways.masks import member_reach, ranges
from ..training import checkpoint
from ..training.checkpoint import network_names
from ..training.config import SCORING_PATHWAYS, score_summary
from ..training.logging import read_csv, read_jsonl
from ..training.run_dir import load_run_config
from .inspect_multitask import inspect_multitask


def _layer_masks(state: dict, prefix: str):
    """(layer, mask, masked) for each masked layer under ``prefix``, in module order; a layer running dense
    (``use_mask`` off) reads as masked=False."""
    algo = state["algo"]
    for key, mask in algo.items():
        if key.startswith(prefix) and key.endswith(".mask"):
            extra = algo.get(key[:-len("mask")] + "_extra_state", {})
            yield key[len(prefix):-len(".mask")], mask[0], bool(extra.get("use_mask", True))


def layer_table(state: dict, prefix: str) -> list[tuple[str, tuple[int, int], int, int, bool]]:
    """(layer, shape, active, total, masked) for each masked layer under ``prefix``."""
    return [(layer, tuple(m.shape), int(m.sum()) if masked else m.numel(), m.numel(), masked)
            for layer, m, masked in _layer_masks(state, prefix)]


def input_reach(state: dict, prefix: str) -> list[str]:
    """Per member of the network (the twin critic's q1 and q2; one for an MLP) made of chained linear layers:
    how many of its inputs keep a path to the output, and which are cut off. Empty for convolutions or
    layers that do not chain (their inputs are not one vector)."""
    reach = member_reach((layer, m if masked else torch.ones_like(m))
                         for layer, m, masked in _layer_masks(state, prefix)) or {}
    return [f"{member + ' ' if len(reach) > 1 else ''}{int(r.sum())}/{r.numel()}"
            + (f" (cut off: {ranges(cut)})" if (cut := (~r).nonzero().flatten().tolist()) else "")
            for member, r in reach.items()]


def inspect_run(run_dir: Path, plot: Path | None = None, *, list_updates: bool = False) -> str:
    cfg = load_run_config(run_dir)
    if cfg.run.benchmark is not None:
        return inspect_multitask(Path(run_dir), plot)
    ckpt = checkpoint.latest(run_dir)
    state = checkpoint.load_state(ckpt)
    events = read_jsonl(run_dir / "pathway.jsonl")
    evals = read_csv(run_dir / "metrics.csv")
    p = cfg.pathway

    out = [f"run      {run_dir}",
           f"env      {cfg.run.env}   pathway {p.pathway}   keep ratio {p.keep_ratio}"
           # score, K and L mean nothing to a pathway that does not score (dense, random, SET, RigL, RLx2)
           + (f"   score {score_summary(cfg)}   K={p.moving_average}   L={p.window}"
              if p.pathway in SCORING_PATHWAYS else "")
           + (f"   scope {p.scope}" if p.scope != "global" else "")
           + (f"   actor scored by {cfg.offline.npf_actor_loss}" if cfg.offline.npf_actor_loss != "own" else ""),
           f"step     {state['counters']['step']} of {cfg.run.steps} (checkpoint {ckpt.name})"]
    if cfg.offline.dataset:
        out.insert(2, f"dataset  {cfg.offline.dataset}" + (f" ({cfg.offline.transitions:,} transitions)"
                                                           if cfg.offline.transitions else ""))
    if evals:
        last = evals[-1]
        out.append(f"eval     {float(last['return_mean']):.1f} ± {float(last['return_std']):.1f} at step "
                   f"{last['step']} ({len(evals)} evaluations)")
    for net in network_names(state):
        rows = layer_table(state, f"{net}.")
        active, total = sum(r[2] for r in rows), sum(r[3] for r in rows)
        out.append("")
        out.append(f"{net}: {active:,} of {total:,} weights active "
                   f"(density {active / total:.4f}, sparsity {1 - active / total:.2%})")
        for name, shape, a, t, masked in rows:
            bar = "#" * int(round(20 * a / t))
            out.append(f"  {name:8s} {shape[1]:>5d}→{shape[0]:<5d} {a:>7,d}/{t:<7,d} {a / t:7.2%}  {bar}"
                       + ("" if masked else "  (dense)"))
        cut = [name for name, _, a, _, masked in rows if masked and a == 0]
        if cut:
            out.append(f"  warning: {', '.join(cut)} keep{'s' if len(cut) == 1 else ''} no weight: what follows sees "
                       "only biases (a disconnected pathway); --scope member or layer ranks the parts apart")
        reach = input_reach(state, f"{net}.")
        if reach:
            out.append(f"  inputs with a path to the output: {', '.join(reach)}")
            if any("cut off" in r for r in reach):
                out.append("  (a cut-off input is ignored: a Q network that cuts off an action input gives the actor "
                           "no gradient for that action)")
        updates = [e for e in events if e["net"] == net and e["event"] == "update"]
        if updates:
            changed = np.array([e["changed"] for e in updates])
            out.append(f"  {len(updates)} mask updates from step {updates[0]['step']} to {updates[-1]['step']}; "
                       f"entries changed per update: median {np.median(changed):.0f}, "
                       f"first {changed[0]}, last {changed[-1]}, max {changed.max()}")
            out += _swap_lines(net, updates, [e for e in events if e["net"] == net and e["event"] == "swap-later"])
        freezes = [e for e in events if e["net"] == net and e["event"] == "freeze"]
        if freezes:
            f = freezes[0]
            out.append(f"  frozen at step {f.get('frozen_at', f['step'])}: {f.get('reason')}")
        elif p.pathway == "dapd":
            out.append("  not frozen yet (warm-up)")
    if list_updates:
        out += ["", "mask events (step, network, event, entries changed, density):"]
        out += [f"  {e['step']:>9d}  {e['net']:6s}  {e['event']:6s}  {e.get('changed', ''):>7}  "
                f"{e.get('density', '')}" + (f"  {e['reason']}" if "reason" in e else "") for e in events]
    if plot is not None:
        _plot(plot, cfg, state, events, evals)
        out.append("")
        out.append(f"plot: {plot}")
    return "\n".join(out)


def _swap_lines(net: str, updates: list[dict], later: list[dict]) -> list[str]:
    """What the swaps did to the network's outputs (SAC runs log it since 0.3: `training/swap_probe.py`)."""
    shifts = [e["shift"] for e in updates if "shift" in e]
    if not shifts:
        return []
    what = "deterministic actions" if net == "actor" else "Q values" if net == "critic" else "outputs"
    line = (f"  a swap moved the {what} by a median {np.median(shifts):.1%} of their size on a fixed recent batch "
            f"(max {max(shifts):.1%})")
    if later:
        line += (f"; 1000 steps on they were {np.median([e['shift'] for e in later]):.1%} from the pre-swap outputs "
                 f"and {np.median([e['drift'] for e in later]):.1%} from the post-swap ones (training included)")
    return [line]


def _legend(ax) -> None:
    """A legend only where something is labelled (a run without mask updates has nothing to name)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")


def _plot(path: Path, cfg, state: dict, events: list[dict], evals: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    ax = axes[0]
    if evals:
        ax.plot([int(r["step"]) for r in evals], [float(r["return_mean"]) for r in evals], "k-", label="eval return")
    first = network_names(state)[0]     # actor, or DQN's q: one freeze line, not one per network
    for e in events:
        if e["event"] == "freeze" and e["net"] == first:
            ax.axvline(e.get("frozen_at", e["step"]), color="tab:red", ls="--", label="mask frozen")
    ax.set_title(f"{cfg.run.env} — {cfg.pathway.pathway}")
    ax.set_xlabel("step")
    ax.set_ylabel("return")
    _legend(ax)

    ax = axes[1]
    for net, color in zip(network_names(state), ("tab:blue", "tab:orange", "tab:green")):
        ups = [e for e in events if e["net"] == net and e["event"] == "update"]
        if ups:
            ax.plot([e["step"] for e in ups], [e["changed"] for e in ups], ".", ms=3, color=color, label=net)
    ax.set_title("entries changed per mask update")
    ax.set_xlabel("step")
    ax.set_yscale("symlog")
    _legend(ax)

    ax = axes[2]
    labels, dens = [], []
    for net in network_names(state):
        for name, _, a, t, _ in layer_table(state, f"{net}."):
            labels.append(f"{net}.{name}")
            dens.append(a / t)
    ax.barh(labels, dens, color="tab:green")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title("density per layer (active / all weights)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
