"""FLOPs of a SAC run, from its checkpoint and its own logs, counted by the layer hooks of `counter`.

The run's agent is rebuilt from its latest checkpoint and SAC's own code runs once per kind of pass on a
copy of it, under the hooks: an update without the actor step (TD target, critic forward and backward), one
with it (what the actor step adds: the actor forward and backward, the critic back to the action, the
temperature), one on an n-step batch (RLx2: the actor on the intermediate states), one action, and each
mask event's scoring pass (DAPD's SNIP with every network dense; RigL and RLx2's grow gradient with the
grown network dense and the others masked). No formula of SAC is written here: a pass costs what its
layers counted.

DAPD's masks move during warm-up, and so does each layer's share of them (first layers' input gradients
are skipped, so the cost of an update depends on which layers hold the weights, not only on how many). The
counts keep each layer's row-passes, so every update is priced at the masks in effect at its step: the
per-layer densities logged with every mask event in ``pathway.jsonl`` give the masks, the checkpoint's
update counter and ``actor_every`` the number of updates under each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..pathways.masks import unmasked
from ..training import checkpoint
from ..training.logging import read_csv, read_jsonl
from .counter import (CONVENTION, MAC_FLOPS, Cost, Counts, MaskState, NetParams, count, count_scoring, dense_flops,
                      minus, net_params, pathway_flops, ratio_text, report_text, si, total)
from .mask_timeline import mask_timeline, masks_at, nnz

if TYPE_CHECKING:
    from ..algos.sac import SAC
    from ..training.config import Config

SAC_NETS = ("actor", "critic", "critic_target")


def sac_nets(sac: SAC) -> dict[str, nn.Module]:
    """The networks the hooks count under their own names (the target critic apart from the critic)."""
    return {n: getattr(sac, n) for n in SAC_NETS}


def sac_masks(sac: SAC) -> MaskState:
    """The agent's masks as a `MaskState` (the target critic holds the critic's)."""
    return {n: nnz(getattr(sac, n)) for n in SAC_NETS}


# ---- the passes of one agent, counted -------------------------------------------------------------

def nstep_batch(n: int, obs_dim: int, act_dim: int, nstep: int, generator: torch.Generator):
    """A random n-step batch (RLx2) of the shapes `ReplayBuffer.sample_nstep` gives."""
    from ..algos.common import random_batch
    b = random_batch(n, obs_dim, act_dim, generator)
    return b._replace(discount=torch.full((n, 1), 0.97), mid_obs=torch.randn(n, nstep - 1, obs_dim, generator=generator),
                      mid_weight=torch.ones(n, nstep - 1))


def count_update(sac: SAC, batch_size: int, *, nstep: int = 1) -> dict[str, Counts]:
    """One real `SAC.update` on a copy of ``sac``, by part: ``critic`` (an update that skips the actor),
    ``actor`` (what the actor step adds), ``nstep`` (what an n-step batch adds; only for ``nstep`` > 1)."""
    from ..algos.common import random_batch
    work = copy.deepcopy(sac)
    work.act_executor = None
    work.cfg = replace(work.cfg, actor_every=2)        # update 1 skips the actor, update 2 runs it
    work.updates = 0
    opts = work.make_optimizers()
    nets = sac_nets(work)
    g = torch.Generator().manual_seed(0)
    one = random_batch(batch_size, sac.obs_dim, sac.act_dim, g)
    critic = count(nets, lambda: work.update(one, opts))
    both = count(nets, lambda: work.update(one, opts))
    parts = {"critic": critic, "actor": minus(both, critic)}
    if nstep > 1:
        work.updates = 2                               # update 3 skips the actor
        longer = count(nets, lambda: work.update(nstep_batch(batch_size, sac.obs_dim, sac.act_dim, nstep, g), opts))
        parts["nstep"] = minus(longer, critic)
    return parts


def count_forward(sac: SAC, fn: Callable[[SAC], Any]) -> Counts:
    """The counts of ``fn(sac)`` (an action, a forward pass) on the agent as it is."""
    return count(sac_nets(sac), lambda: fn(sac))


def _obs(sac: SAC) -> np.ndarray:
    """One observation, as the loop hands `act` one (the values do not matter, the shape does)."""
    return np.zeros(sac.obs_dim, dtype=np.float32)


def forward_cost(counts: Counts, n: int = 1) -> Cost:
    """``n`` times a counted pass, dense vs pathway."""
    return Cost(n, n * dense_flops(counts), n * pathway_flops(counts))


# ---- mask events ----------------------------------------------------------------------------------

def _scoring_setup(cfg: Config, net: str, event: str) -> str:
    """How a mask event of ``net`` is scored in the SAC loop: ``dense`` (DAPD and static SNIP: the run's
    score on every network dense, `unmasked`), ``grow`` (RigL, RLx2: the grow gradient of the network's own
    training loss, the others masked) or ``none`` (random or ER initial masks, SET's random growth, a
    static run's updates)."""
    p = cfg.pathway.pathway
    if p == "dapd" or (p == "static" and event == "init"):
        return "dense"
    if p in ("rigl", "rlx2") and event == "update":
        return "grow"
    return "none"


def _scoring_pass(cfg: Config, sac: SAC, net: str, setup: str) -> Counts:
    """The counts of one scoring pass of ``net`` under ``setup`` (see `_scoring_setup`), to be priced at
    the masks of each event: ``{}`` where it costs nothing (magnitude, random)."""
    from ..algos.common import random_batch
    if setup == "none":
        return {}
    b = random_batch(cfg.pathway.score_batch, sac.obs_dim, sac.act_dim, torch.Generator().manual_seed(1))
    losses = sac.losses(training=setup == "grow")
    nets = sac_nets(sac)
    if setup == "grow":                     # RigL's grow signal, whatever the initial masks were scored with
        return count_scoring("grad", nets[net], lambda: losses[net](b), nets)
    with unmasked(sac):
        return count_scoring(cfg.score_of(net), nets[net], lambda: losses[net](b), nets,
                             keep_ratio=cfg.keep_ratio_of(net), synflow_rounds=cfg.pathway.synflow_rounds)


# ---- a whole run ----------------------------------------------------------------------------------

@dataclass
class FlopReport:
    """FLOPs of one SAC run. ``dense`` columns are the same passes with every weight active and no mask
    events (a dense SAC run); ``ratio`` = dense / pathway."""
    run_dir: str
    env: str
    pathway: str
    step: int
    updates: int
    batch_size: int
    score_batch: int
    params: dict[str, dict[str, int]]
    forward: dict[str, Cost]            # per sample; count = 1
    per_update: dict[str, Cost]         # one update at the final masks; count = 1
    run: dict[str, Cost]                # whole run, by line, with "training" and "total"
    notes: list[str] = field(default_factory=list)
    convention: str = CONVENTION

    @property
    def ratio(self) -> float | None:
        """Training FLOPs of a dense run over this run's."""
        return self.run["training"].ratio

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (``--json``)."""
        return {"run_dir": self.run_dir, "env": self.env, "pathway": self.pathway, "step": self.step,
                "updates": self.updates, "batch_size": self.batch_size, "score_batch": self.score_batch,
                "convention": self.convention, "flops_per_mac": MAC_FLOPS, "params": self.params,
                "forward_per_sample": {k: v.to_dict() for k, v in self.forward.items()},
                "per_update": {k: v.to_dict() for k, v in self.per_update.items()},
                "run": {k: v.to_dict() for k, v in self.run.items()},
                "training_flops_per_env_step": self.run["training"].pathway / max(self.step, 1),
                "ratio": self.ratio, "notes": list(self.notes)}


def _multiples(lo: int, hi: int, k: int) -> int:
    """How many multiples of ``k`` lie in [lo, hi]."""
    return max(0, hi // k - (lo - 1) // k) if hi >= lo else 0


def load_sac(cfg: Config, state: Mapping[str, Any], ckpt: Path) -> SAC:
    """The run's agent as its checkpoint holds it (masks included), on the CPU, without sparse executors."""
    from ..algos.sac import SAC
    try:
        algo = state["algo"]
        obs_dim = int(algo["actor.net.0.weight"].shape[1])
        act_dim = int(algo["critic.q1.0.weight"].shape[1]) - obs_dim
        sac = SAC(obs_dim, act_dim, cfg.sac)
        sac.load_state_dict(algo)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError):
        raise UsageError(f"checkpoint {str(ckpt)!r} does not hold a neuropath SAC agent") from None
    return sac


def flops_of_run(run_dir: str | Path) -> FlopReport:
    """The FLOP report of a run directory (its config, latest checkpoint, pathway.jsonl and metrics.csv);
    a `UsageError` with one clear line when the directory is not a readable run.

    Updates are counted from the checkpoint (one per step from the first step with ``seed_steps`` done and
    a full batch); each is charged at the masks in effect then. Acting (one action per step after
    ``seed_steps``, plus the ``init_steps`` of dense acting that data-scored initial masks need) and
    evaluation episodes (from metrics.csv) are listed apart from training."""
    from ..training.build import needs_init_data
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cfg.offline.dataset is not None:
        raise UsageError(f"{str(run_dir)!r} is an offline ({cfg.run.algo}) run: `flops_of_run` counts SAC runs "
                         "(`neuropath flops` counts every kind)")
    if cfg.run.benchmark is not None:
        raise UsageError(f"{str(run_dir)!r} is a multi-task ({cfg.run.benchmark}) run: `neuropath inspect` "
                         "gives its parameters and forward FLOPs per task")
    ckpt = checkpoint.latest(run_dir)
    state = checkpoint.load_state(ckpt)
    sac = load_sac(cfg, state, ckpt)
    try:
        step = int(state["counters"]["step"])
        updates = int(state["algo_updates"])
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"checkpoint {str(ckpt)!r} does not hold a neuropath SAC agent") from None
    try:
        events = [e for e in read_jsonl(run_dir / "pathway.jsonl") if int(e["step"]) <= step]
        evals = [r for r in read_csv(run_dir / "metrics.csv") if int(r["step"]) <= step]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{str(run_dir)!r} has a corrupt pathway.jsonl or metrics.csv") from None

    r, s, p, x = cfg.run, cfg.sac, cfg.pathway, cfg.rlx2
    notes: list[str] = []
    B, ae = s.batch_size, s.actor_every
    nstep = x.nstep if p.pathway == "rlx2" else 1
    parts = count_update(sac, B, nstep=nstep)

    # -- updates, segment by segment of constant masks
    first = step - updates + 1                  # the updates ran at steps first..step
    timeline = mask_timeline(events, {"actor": sac.actor, "critic": sac.critic}, notes,
                             tied={"critic": "critic_target"}, time=lambda e: int(e["step"]))
    keys = list(parts)
    counts = {k: 0 for k in keys}
    path_u = dict(counts)
    for i, (at, masks) in enumerate(timeline):
        lo = max(at + 1, first) if i else first  # masks logged at step e apply from update e+1
        hi = timeline[i + 1][0] if i + 1 < len(timeline) else step
        if hi < lo:
            continue
        k_lo, k_hi = lo - first + 1, hi - first + 1
        n = {"critic": k_hi - k_lo + 1, "actor": _multiples(k_lo, k_hi, ae),
             "nstep": max(0, k_hi - max(k_lo, x.nstep_delay + 1) + 1)}
        for key in keys:
            counts[key] += n[key]
            path_u[key] += n[key] * pathway_flops(parts[key], masks)
    if len(timeline) > 1:
        notes.append(f"updates charged at the masks in effect at each step ({len(timeline)} mask states "
                     "from pathway.jsonl)")
    label = {"critic": "critic updates", "actor": "actor updates", "nstep": "n-step target forwards"}
    run: dict[str, Cost] = {label[k]: Cost(counts[k], counts[k] * dense_flops(parts[k]), path_u[k]) for k in keys}

    # -- mask events (DAPD scoring, RigL/RLx2 grow gradients), at the masks of their time
    event_label = "mask scoring" if p.pathway in ("dapd", "static") else "topology updates"
    for net in ("actor", "critic"):
        passes: dict[str, Counts] = {}
        mine = []
        for e in events:
            if e.get("net") != net or e.get("event") not in ("init", "update"):
                continue
            setup = _scoring_setup(cfg, net, e["event"])
            if setup not in passes:
                passes[setup] = _scoring_pass(cfg, sac, net, setup)
            if e["event"] == "update" or passes[setup]:         # free initial masks are not events
                mine.append((e, passes[setup]))
        if mine:
            cost = sum(pathway_flops(one, masks_at(timeline, int(e["step"]))) for e, one in mine)
            run[f"{event_label}: {net}"] = Cost(len(mine), 0, cost)
    checks = [e for e in events if e.get("event") == "buffer"]
    if checks:    # RLx2's policy distance: one actor forward on the oldest transitions
        rows = sum(min(x.buffer_check_size, int(e.get("size", 0)) + int(e.get("dropped", 0))) for e in checks)
        one = count_forward(sac, lambda a: a.policy_distance(torch.zeros(1, a.obs_dim), torch.zeros(1, a.act_dim)))
        c = forward_cost(one, rows)
        run["buffer checks (actor fwd)"] = Cost(len(checks), c.dense, c.pathway)
    run["training"] = total(run.values())

    # -- acting and evaluation: one action per environment step
    dynamic = p.pathway == "rlx2" and x.dynamic_buffer
    act = count_forward(sac, (lambda a: a.act_with_mean(_obs(a))) if dynamic else (lambda a: a.act(_obs(a))))
    greedy = count_forward(sac, lambda a: a.act(_obs(a), deterministic=True))
    acting = max(0, step - r.seed_steps)
    extra: dict[str, Cost] = {"acting (rollout)": forward_cost(act, acting)}
    if needs_init_data(cfg):                        # the untrained actor acts before it has a mask
        n_init = max(p.init_steps, 1)
        with unmasked(sac.actor):
            dense_act = count_forward(sac, lambda a: a.act(_obs(a)))
        extra["acting (initial scoring data)"] = Cost(n_init, 0, n_init * pathway_flops(dense_act))
    try:
        eval_steps = sum(round(float(row["length_mean"]) * r.eval_episodes) for row in evals)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{str(run_dir / 'metrics.csv')!r} is corrupt") from None
    extra["evaluation"] = forward_cost(greedy, eval_steps)
    run.update(extra)
    run["total"] = total([run["training"], *extra.values()])
    if p.pathway == "dapd":
        notes.append("DAPD's warm-up changes which weights are active, not how many: forward costs "
                     "(acting, evaluation) use the final masks' total nnz, which is the same at every step")

    # -- per sample and per update, at the final masks
    with torch.no_grad():
        forward = {"actor": forward_cost(count_forward(sac, lambda a: a.actor(torch.zeros(1, a.obs_dim)))),
                   "critic (Q1+Q2)": forward_cost(count_forward(
                       sac, lambda a: a.critic(torch.zeros(1, a.obs_dim), torch.zeros(1, a.act_dim))))}
    per_update = {"critic update": forward_cost(parts["critic"]),
                  f"actor update (1 in {ae})" if ae > 1 else "actor update": forward_cost(parts["actor"])}
    if nstep > 1:
        per_update["n-step target forwards"] = forward_cost(parts["nstep"])
    per_update["update"] = total(per_update.values(), count=1)

    params = {n: _sac_params(net_params(getattr(sac, n))) for n in SAC_NETS}
    params["all"] = {k: sum(v[k] for v in params.values()) for k in params["actor"]}
    return FlopReport(str(run_dir), r.env, p.pathway, step, updates, B, p.score_batch, params, forward,
                      per_update, run, notes)


def _sac_params(v: NetParams) -> dict[str, int]:
    """Parameter counts as SAC's report has always given them: ``active`` = active weights + every bias
    (biases are never masked); ``active_weights`` leaves biases out, as RLx2's "size" does."""
    return {"total": v.weights + v.biases, "active": v.active + v.biases, "weights": v.weights,
            "active_weights": v.active, "biases": v.biases}


# ---- the text --------------------------------------------------------------------------------------

def format_flops(report: FlopReport) -> str:
    """The report in the layout every kind's ``neuropath flops`` text has (`counter.report_text`)."""
    rp = report
    params = {n: NetParams(v["weights"], v["active_weights"], v["biases"]) for n, v in rp.params.items()}
    per_step = rp.run["training"]
    footer = ["", f"Training FLOPs per environment step (run average): dense {si(per_step.dense / max(rp.step, 1))}, "
              f"pathway {si(per_step.pathway / max(rp.step, 1))}; dense/pathway = {ratio_text(per_step)} "
              f"(whole run incl. acting and evaluation: {ratio_text(rp.run['total'])})."]
    return report_text(
        f"FLOPs of {rp.run_dir} (SAC, {rp.pathway}, {rp.env}, checkpoint at step {rp.step:,}, "
        f"{rp.updates:,} updates of batch {rp.batch_size})", params,
        [("forward, per sample", rp.forward, False),
         (f"one update, B={rp.batch_size} (final masks)", rp.per_update, False),
         ("whole run", rp.run, True)],
        footer, rp.notes)
