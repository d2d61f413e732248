"""FLOPs of PPO, DQN and offline runs (BCQ, IQL; single task and MT10), and the FLOP counter of every kind
(`count_run`, `count_*_run`, named in `neuropath.kinds`).

Every kind is counted the same way (`counter`): the run's networks are rebuilt from its latest checkpoint
and the algorithm's own code runs once, under the layer hooks, on a copy of them: one update, one action,
each kind of scoring pass, set up as the training loop sets it up (which networks run dense while a mask is
scored). BCQ's passes are why no per-algorithm formula is written: its critic target decodes 10 next actions
per state through the VAE, the perturbation actor and the target critic, and acting scores 100 decodes.
SAC's report (`flops.py`) is counted by the same hooks. For SAC, PPO and DQN the whole run prices every
update, action and scoring pass at the masks of its time, rebuilt from ``pathway.jsonl`` (`mask_timeline`):
a counted pass costs rows × active weights per layer at any masks. Offline runs choose their masks once, so
their whole run = updates × one update + the scoring passes. Evaluation episodes are not included (their
length is not logged for these kinds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..pathways.layers import MaskedLinear
from ..pathways.masks import unmasked
from ..pathways.multitask import TaskLinear
from ..training.checkpoint import load_trained
from ..training.run_dir import latest_checkpoint
from .counter import (CONVENTION, MAC_FLOPS, Cost, Counts, Macs, MaskState, NetParams, count, count_scoring, counting,
                      dense_flops, net_params, pathway_flops, report_text, total)
from .mask_timeline import Timeline, dense_masks, mask_timeline, masks_at, multiples, priced

__all__ = ["CONVENTION", "MAC_FLOPS", "Macs", "counting", "OfflineFlops", "LoopFlops", "offline_flops_of_run",
           "ppo_flops_of_run", "dqn_flops_of_run", "format_offline_flops", "format_loop_flops", "count_run",
           "count_sac_run", "count_ppo_run", "count_dqn_run", "count_offline_run"]


def _nets(algo: nn.Module) -> dict[str, nn.Module]:
    """The algorithm's networks that hold masked layers, by attribute name (targets included)."""
    named = dict(algo.named_children())
    return {n: named[n] for n in named if isinstance(named[n], nn.Module) and any(
        isinstance(m, (MaskedLinear, TaskLinear)) for m in named[n].modules())}


def _params(net: nn.Module, tasks: int = 0) -> dict[str, int]:
    """``{"total", "active", "biases"}``: weights stored and active (per task: the mean), biases."""
    p = net_params(net, tasks)
    return {"total": p.weights, "active": p.active, "biases": p.biases}


def _text_params(parameters: dict[str, dict[str, int]]) -> dict[str, NetParams]:
    return {n: NetParams(v["total"], v["active"], v.get("biases", 0)) for n, v in parameters.items()}


def _flops(counts: Counts) -> dict[str, int]:
    return {"dense": dense_flops(counts), "pathway": pathway_flops(counts)}


def _latest(run_dir: Path) -> tuple[Any, Path, dict, dict]:
    """The run's config, latest checkpoint folder, its meta and its state."""
    saved = latest_checkpoint(run_dir)
    return saved.cfg, saved.path, saved.meta, saved.state


# ---- offline ----------------------------------------------------------------------------------------

@dataclass
class OfflineFlops:
    algo: str
    pathway: str
    tasks: int
    parameters: dict[str, dict[str, int]]        # network -> total / active weights (per task: mean), biases
    update: dict[str, dict[str, int]]            # network -> dense / pathway FLOPs of one update
    action: dict[str, int]                       # dense / pathway FLOPs of one action (all tasks)
    scoring: int                                 # FLOPs of the NPF scoring passes (once; 0 if none)
    updates: int
    convention: str = CONVENTION
    run_dir: str = ""

    def totals(self) -> dict[str, int]:
        dense = sum(v["dense"] for v in self.update.values())
        path = sum(v["pathway"] for v in self.update.values())
        return {"update_dense": dense, "update_pathway": path, "run_dense": self.updates * dense,
                "run_pathway": self.updates * path + self.scoring}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def offline_flops_of_run(run_dir: str | Path) -> OfflineFlops:
    """Load an offline run's latest checkpoint into its algorithm and count one update, one action and the
    NPF scoring passes (see the module docstring)."""
    from ..algos.common import random_batch
    from ..training.loops.offline import build_algo

    run_dir = Path(run_dir)
    cfg, ckpt, meta, state = _latest(run_dir)
    tasks = len(meta.get("tasks") or [])
    algo = build_algo(cfg, meta["obs_dim"], meta["act_dim"], tasks=tasks, per_task_heads=meta.get("heads") == "per-task")
    load_trained(algo, state["algo"], ckpt)
    shape = (tasks,) if tasks else ()

    def fake_batch(n: int):
        return random_batch(n, algo.obs_dim, algo.act_dim, torch.Generator().manual_seed(0), shape)

    work = copy.deepcopy(algo)
    opts = work.make_optimizers()
    upd = count(_nets(work), lambda: work.update(fake_batch(algo.cfg.batch_size), opts, work.make_schedulers(opts)))
    nets = _nets(algo)
    act = count(nets, lambda: algo.act(torch.randn(*shape, algo.obs_dim).numpy()))
    scoring = _npf_scoring(cfg, algo, nets, fake_batch) if cfg.pathway.pathway == "npf" else 0
    parameters = {name: _params(nets[name], tasks) for name in algo.networks}
    update = {n: {"dense": MAC_FLOPS * v.dense, "pathway": MAC_FLOPS * v.active} for n, v in upd.items() if v.dense}
    return OfflineFlops(cfg.run.algo, cfg.pathway.pathway, tasks, parameters, update, _flops(act), scoring,
                        int(state["algo_updates"]), run_dir=str(run_dir))


def _npf_scoring(cfg: Any, algo: nn.Module, nets: dict[str, nn.Module], fake_batch: Callable[[int], Any]) -> int:
    """NPF's single shot as the offline loop runs it: the networks scored one after another, each on its
    loss summed over ``--npf-batches`` batches, the ones scored before it already on their (final) masks,
    the ones after it and the target copies still dense."""
    from ..training.loops.offline import npf_losses
    p, o = cfg.pathway, cfg.offline
    losses = npf_losses(algo, o.npf_actor_loss)
    names = list(algo.networks)
    targets = [t for ts in algo.tied.values() for t in ts]
    flops = 0
    for i, name in enumerate(names):
        batches = [fake_batch(p.score_batch) for _ in range(o.npf_batches)]
        with unmasked(*[algo.networks[n] for n in names[i + 1:]], *targets):
            c = count_scoring(cfg.score_of(name), algo.networks[name], lambda n=name: sum(losses[n](b) for b in batches),
                              nets, keep_ratio=cfg.keep_ratio_of(name), synflow_rounds=p.synflow_rounds)
        flops += pathway_flops(c)
    return flops


def format_offline_flops(r: OfflineFlops) -> str:
    per = f", per task over {r.tasks} tasks" if r.tasks else ""
    t = r.totals()
    one = {n: Cost(1, v["dense"], v["pathway"]) for n, v in r.update.items()}
    one["update"] = total(one.values(), count=1)
    one[f"action{' (all tasks)' if r.tasks else ''}"] = Cost(1, r.action["dense"], r.action["pathway"])
    run = {"updates": Cost(r.updates, t["run_dense"], r.updates * t["update_pathway"])}
    if r.scoring:                                   # NPF scores each network once
        run["mask scoring (NPF)"] = Cost(len(r.parameters), 0, r.scoring)
    run["training"] = total(run.values())
    return report_text(f"FLOPs of {r.run_dir} (offline {r.algo.upper()}, {r.pathway}{per}, {r.updates:,} updates)",
                       _text_params(r.parameters), [("one update, one action", one, False), ("whole run", run, True)],
                       notes=["evaluation episodes are not included (their length is not logged for offline runs)"])


# ---- PPO and DQN ------------------------------------------------------------------------------------

@dataclass
class LoopFlops:
    """An online run (PPO or DQN): one update and one acting step at the final masks, the whole run's
    updates, acting and scoring passes each priced at the masks of its time (`mask_timeline`)."""
    parameters: dict[str, dict[str, int]]
    update: dict[str, int]           # dense / pathway FLOPs of one minibatch update, at the final masks
    step: dict[str, int]             # dense / pathway FLOPs of acting at one environment step, at the final masks
    scoring: dict[str, int]          # pathway FLOPs of all mask scoring passes of the run so far, by network
    updates: int
    steps: int
    convention: str = CONVENTION
    algo: str = "ppo"
    scoring_passes: dict[str, int] = field(default_factory=dict)     # how many, by network
    pathway: str = ""
    run_dir: str = ""
    updates_pathway: int | None = None   # pathway FLOPs of all updates at their masks (None: at the final ones)
    steps_pathway: int | None = None     # of all acting, likewise
    notes: list[str] = field(default_factory=list)

    def run_pathway(self) -> dict[str, int]:
        """Pathway FLOPs of the whole run's updates and acting."""
        return {"updates": self.updates * self.update["pathway"] if self.updates_pathway is None else self.updates_pathway,
                "acting": self.steps * self.step["pathway"] if self.steps_pathway is None else self.steps_pathway}

    def totals(self) -> dict[str, int]:
        dense = self.updates * self.update["dense"] + self.steps * self.step["dense"]
        return {"run_dense": dense, "run_pathway": sum(self.run_pathway().values()) + sum(self.scoring.values())}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def _mask_events(run_dir: Path, step: int) -> list[dict[str, Any]]:
    """The mask events up to the checkpoint's ``step`` (a run still training, or cut, has logged past its
    checkpoint)."""
    from ..training.logging import read_jsonl
    try:
        return [e for e in read_jsonl(run_dir / "pathway.jsonl")
                if e.get("event") in ("init", "update") and int(e["step"]) <= step]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{str(run_dir)!r} has a corrupt pathway.jsonl") from None


def _tied(algo: nn.Module, nets: dict[str, nn.Module]) -> dict[str, str]:
    """Network name → the name of the network that follows its masks (DQN's target), as the loop ties them."""
    name_of = {id(net): n for n, net in nets.items()}
    return {src: name_of[id(dst)] for src, dsts in algo.tied.items() for dst in dsts if id(dst) in name_of}


def _scoring_at_their_masks(events: list[dict[str, Any]], name: str, one: Counts, timeline: Timeline,
                            dense: MaskState, time: Callable[[dict[str, Any]], float]) -> int:
    """The scoring passes of network ``name``'s mask events, each at the masks before it (dense at the
    initial one: nothing was masked yet)."""
    return sum(pathway_flops(one, dense if e["event"] == "init" else masks_at(timeline, time(e)))
               for e in events if e.get("net") == name)


def ppo_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One minibatch update and one acting step of a PPO run, counted per layer; over the run each rollout's
    acting and updates priced at the masks of their time (the first rollout dense: its masks come from it),
    the DAPD scoring passes (every network dense, as the loop scores them) from ``pathway.jsonl``."""
    from ..algos.ppo import PPO, PPOConfig, RolloutBatch
    from ..training.config import algo_settings

    run_dir = Path(run_dir)
    cfg, ckpt, meta, state = _latest(run_dir)
    discrete = bool(meta.get("discrete"))
    algo = PPO(meta["obs_dim"], meta["act_dim"], algo_settings(PPOConfig, cfg, "ppo"), discrete=discrete)
    load_trained(algo, state["algo"], ckpt)
    g = cfg.ppo
    size = g.rollout_steps * g.num_envs // g.minibatches

    def batch(n: int) -> RolloutBatch:
        action = torch.randint(0, algo.act_dim, (n,)).float() if discrete else torch.randn(n, algo.act_dim)
        return RolloutBatch(torch.randn(n, algo.obs_dim), action, torch.zeros(n), torch.randn(n), torch.randn(n),
                            torch.randn(n))

    nets = _nets(algo)
    work = copy.deepcopy(algo)
    upd = count(_nets(work), lambda: work.update(batch(size), work.make_optimizers()))
    act = count(nets, lambda: algo.step(torch.randn(1, algo.obs_dim)))
    steps, updates = int(state["counters"]["step"]), int(state["algo_updates"])
    events = _mask_events(run_dir, steps)
    # One rollout of R transitions at times 1..R, then (at its end) the initial masks, the rollout's updates
    # (time R + 0.5) and the warm-up's mask updates (R + 0.75): each sees the masks before it.
    rollout = g.rollout_steps * g.num_envs
    time = lambda e: e["step"] + (0.75 if e["event"] == "update" else 0.0)     # noqa: E731
    notes: list[str] = []
    dense = {n: dense_masks(net) for n, net in nets.items()}
    timeline = mask_timeline(events, algo.networks, notes, start=dense, time=time)
    rollouts = steps // rollout
    per_rollout = updates // rollouts if rollouts and updates % rollouts == 0 else None
    _, acting = priced(timeline, steps, act, lambda lo, hi: int(hi) - int(lo))
    if per_rollout is None:
        notes.append(f"{updates} updates over {rollouts} rollouts are not a whole number per rollout: every update "
                     "is charged at the final masks")
        updated = None
    else:
        _, updated = priced(timeline, steps + 1, upd,
                            lambda lo, hi: per_rollout * multiples(lo, min(hi, steps + 0.5), rollout, 0.5))
    scoring, passes = {}, {}
    if cfg.pathway.pathway in ("dapd", "static"):
        losses = algo.losses()
        for name in algo.networks:
            n = sum(1 for e in events if e.get("net") == name)
            if n:
                b = batch(cfg.pathway.score_batch)
                with unmasked(algo):                   # the loop scores every network dense
                    c = count_scoring(cfg.score_of(name), algo.networks[name], lambda n=name: losses[n](b), nets,
                                      keep_ratio=cfg.keep_ratio_of(name), synflow_rounds=cfg.pathway.synflow_rounds)
                scoring[name], passes[name] = _scoring_at_their_masks(events, name, c, timeline, dense, time), n
    return _loop_flops(algo, upd, act, scoring, passes, state, "ppo", cfg, run_dir, updated, acting, notes)


def dqn_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One update (Q-network forward and backward, target forward) and one greedy action of a DQN run,
    convolutions included (ε-greedy's random actions are charged a forward pass too); over the run each
    update and action priced at the masks of its step; the scoring passes as the loop runs them: DAPD's on
    the dense Q-network, RigL's grow gradient on the masked one, the target network on its masks in both."""
    from ..algos.dqn import DQNBatch
    from ..training.loops.dqn import make_dqn

    run_dir = Path(run_dir)
    cfg, ckpt, meta, state = _latest(run_dir)
    shape = tuple(meta["obs_shape"])
    algo = make_dqn(cfg, shape, int(meta["n_actions"]))
    load_trained(algo, state["algo"], ckpt)

    def batch(n: int) -> DQNBatch:
        obs = torch.zeros(n, *shape)
        return DQNBatch(obs, torch.zeros(n, dtype=torch.long), torch.zeros(n), obs, torch.ones(n))

    nets = {"q": algo.q, "q_target": algo.q_target}
    work = copy.deepcopy(algo)
    d = cfg.dqn
    upd = count({"q": work.q, "q_target": work.q_target}, lambda: work.update(batch(d.dqn_batch_size),
                                                                              work.make_optimizers()))
    with torch.no_grad():
        act = count({"q": algo.q}, lambda: algo.q(torch.zeros(1, *shape)))
    steps, updates = int(state["counters"]["step"]), int(state["algo_updates"])
    events = _mask_events(run_dir, steps)
    notes: list[str] = []
    # the loop: step t acts, updates when t > --seed-steps, t % --train-every == 0 and the replay holds a
    # batch, then its mask events; masks logged at step t apply from step t + 1
    time = lambda e: float(e["step"])       # noqa: E731
    timeline = mask_timeline(events, {"q": algo.q}, notes, tied=_tied(algo, nets), time=time)
    first = max(cfg.run.seed_steps, d.dqn_batch_size - 1)
    n_upd, updated = priced(timeline, steps, upd, lambda lo, hi: multiples(max(lo, first), hi, d.train_every))
    if n_upd != updates:
        notes.append(f"the loop's update rule gives {n_upd} updates, the checkpoint counts {updates}: every update "
                     "is charged at the final masks")
        updated = None
    _, acting = priced(timeline, steps, act, lambda lo, hi: int(hi) - int(lo))
    scoring, passes = {}, {}
    # SET's and RigL's initial masks are drawn, not scored: only their updates are scoring passes
    scored = events if cfg.pathway.pathway in ("dapd", "static") else [e for e in events if e["event"] == "update"]
    n = sum(1 for e in scored if e.get("net") == "q")
    b = batch(cfg.pathway.score_batch)
    loss = lambda: algo.losses()["q"](b)     # noqa: E731
    c: Counts = {}
    if n and cfg.pathway.pathway in ("dapd", "static"):
        with unmasked(algo.q):
            c = count_scoring(cfg.score_of("q"), algo.q, loss, nets, keep_ratio=cfg.keep_ratio_of("q"),
                              synflow_rounds=cfg.pathway.synflow_rounds)
    elif n and cfg.pathway.pathway == "rigl":                        # grows on the masked network's dense gradient
        c = count_scoring("grad", algo.q, loss, nets)
    if c:
        dense = {k: dense_masks(net) for k, net in nets.items()}
        scoring["q"], passes["q"] = _scoring_at_their_masks(scored, "q", c, timeline, dense, time), n
    return _loop_flops(algo, upd, act, scoring, passes, state, "dqn", cfg, run_dir, updated, acting, notes)


def _loop_flops(algo: nn.Module, upd: Counts, act: Counts, scoring: dict[str, int], passes: dict[str, int],
                state: dict, name: str, cfg: Any, run_dir: Path, updated: int | None, acting: int | None,
                notes: list[str]) -> LoopFlops:
    parameters = {net_name: _params(net) for net_name, net in algo.networks.items()}
    return LoopFlops(parameters, _flops(upd), _flops(act), scoring, int(state["algo_updates"]),
                     int(state["counters"]["step"]), algo=name, scoring_passes=passes, pathway=cfg.pathway.pathway,
                     run_dir=str(run_dir), updates_pathway=updated, steps_pathway=acting, notes=notes)


def format_loop_flops(r: LoopFlops) -> str:
    acting = "actor + value" if r.algo == "ppo" else "one Q-network forward"
    one = {"update": Cost(1, r.update["dense"], r.update["pathway"]),
           f"environment step ({acting})": Cost(1, r.step["dense"], r.step["pathway"])}
    at = r.run_pathway()
    run = {"minibatch updates": Cost(r.updates, r.updates * r.update["dense"], at["updates"]),
           "acting": Cost(r.steps, r.steps * r.step["dense"], at["acting"])}
    for n, v in r.scoring.items():
        run[f"mask scoring: {n}"] = Cost(r.scoring_passes.get(n), 0, v)
    run["total"] = total(run.values())
    return report_text(f"FLOPs of {r.run_dir} ({r.algo.upper()}, {r.pathway}, {r.updates:,} minibatch updates, "
                       f"{r.steps:,} steps)",
                       _text_params(r.parameters), [("one update, one step", one, False), ("whole run", run, True)],
                       notes=["evaluation episodes are not included",
                              "the whole run's passes are priced at the masks of their time (pathway.jsonl); "
                              "one update, one step at the final masks", *r.notes])


# ---- the counter of every kind ----------------------------------------------------------------------

def count_run(run_dir: str | Path) -> tuple[Any, str, float]:
    """Any run's FLOP count, by its kind (`neuropath.kinds`), as ``neuropath flops`` and ``neuropath report``
    both need it: ``(report object, its text, training FLOPs on the pathway)``."""
    from ..kinds import kind_of_run
    return kind_of_run(run_dir).count_flops(Path(run_dir))


def count_sac_run(run_dir: Path) -> tuple[Any, str, float]:
    from .flops import flops_of_run, format_flops
    report = flops_of_run(run_dir)
    return report, format_flops(report), float(report.run["training"].pathway)


def count_ppo_run(run_dir: Path) -> tuple[Any, str, float]:
    loop = ppo_flops_of_run(run_dir)
    return loop, format_loop_flops(loop), float(loop.totals()["run_pathway"])


def count_dqn_run(run_dir: Path) -> tuple[Any, str, float]:
    loop = dqn_flops_of_run(run_dir)
    return loop, format_loop_flops(loop), float(loop.totals()["run_pathway"])


def count_offline_run(run_dir: Path) -> tuple[Any, str, float]:
    offline = offline_flops_of_run(run_dir)
    return offline, format_offline_flops(offline), float(offline.totals()["run_pathway"])
