"""FLOPs of PPO, DQN and offline runs (BCQ, IQL; single task and MT10), and the FLOP counter of every kind
(`count_run`, `count_*_run`, named in `neuropath.kinds`).

Every kind is counted the same way (`counter`): the run's networks are rebuilt from its latest checkpoint
and the algorithm's own code runs once, under the layer hooks, on a copy of them: one update, one action,
each kind of scoring pass, set up as the training loop sets it up (which networks run dense while a mask is
scored). BCQ's passes are why no per-algorithm formula is written: its critic target decodes 10 next actions
per state through the VAE, the perturbation actor and the target critic, and acting scores 100 decodes.
SAC's report (`flops.py`) is counted by the same hooks and adds the per-mask-state accounting of DAPD's
warm-up. PPO and DQN updates are charged at the final masks (warm-up updates ran at other masks of the same
size). The whole run = updates × one update (+ acting for PPO and DQN) + the scoring passes; evaluation
episodes are not included (their length is not logged for these kinds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..pathways.layers import MaskedLinear
from ..pathways.masks import unmasked
from ..pathways.multitask import TaskLinear
from ..training.checkpoint import load_trained
from ..training.run_dir import latest_checkpoint
from .counter import (CONVENTION, MAC_FLOPS, Cost, Counts, Macs, NetParams, count, count_scoring, counting,
                      dense_flops, net_params, pathway_flops, report_text, total)

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
    """An online run (PPO or DQN): one update, one acting step, the scoring passes, and their counts."""
    parameters: dict[str, dict[str, int]]
    update: dict[str, int]           # dense / pathway FLOPs of one minibatch update
    step: dict[str, int]             # dense / pathway FLOPs of acting at one environment step
    scoring: dict[str, int]          # pathway FLOPs of all mask scoring passes of the run so far, by network
    updates: int
    steps: int
    convention: str = CONVENTION
    algo: str = "ppo"
    scoring_passes: dict[str, int] = field(default_factory=dict)     # how many, by network
    pathway: str = ""
    run_dir: str = ""

    def totals(self) -> dict[str, int]:
        dense = self.updates * self.update["dense"] + self.steps * self.step["dense"]
        path = self.updates * self.update["pathway"] + self.steps * self.step["pathway"] + sum(self.scoring.values())
        return {"run_dense": dense, "run_pathway": path}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def _mask_events(run_dir: Path, name: str) -> int:
    from ..training.logging import read_jsonl
    return sum(1 for e in read_jsonl(run_dir / "pathway.jsonl") if e.get("net") == name
               and e.get("event") in ("init", "update"))


def ppo_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One minibatch update and one acting step of a PPO run, counted per layer at its final masks; the DAPD
    scoring passes (every network dense, as the loop scores them) from ``pathway.jsonl``."""
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
    scoring, passes = {}, {}
    if cfg.pathway.pathway in ("dapd", "static"):
        losses = algo.losses()
        for name in algo.networks:
            n = _mask_events(run_dir, name)
            if n:
                b = batch(cfg.pathway.score_batch)
                with unmasked(algo):                   # the loop scores every network dense
                    c = count_scoring(cfg.score_of(name), algo.networks[name], lambda n=name: losses[n](b), nets,
                                      keep_ratio=cfg.keep_ratio_of(name), synflow_rounds=cfg.pathway.synflow_rounds)
                scoring[name], passes[name] = n * pathway_flops(c), n
    return _loop_flops(algo, upd, act, scoring, passes, state, "ppo", cfg, run_dir)


def dqn_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One update (Q-network forward and backward, target forward) and one greedy action of a DQN run at its
    final masks, convolutions included (ε-greedy's random actions are charged a forward pass too); the
    scoring passes as the loop runs them: DAPD's on the dense Q-network, RigL's grow gradient on the masked
    one, the target network on its masks in both."""
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
    upd = count({"q": work.q, "q_target": work.q_target}, lambda: work.update(batch(cfg.dqn.dqn_batch_size),
                                                                              work.make_optimizers()))
    with torch.no_grad():
        act = count({"q": algo.q}, lambda: algo.q(torch.zeros(1, *shape)))
    scoring, passes = {}, {}
    n = _mask_events(run_dir, "q")
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
        scoring["q"], passes["q"] = n * pathway_flops(c), n
    return _loop_flops(algo, upd, act, scoring, passes, state, "dqn", cfg, run_dir)


def _loop_flops(algo: nn.Module, upd: Counts, act: Counts, scoring: dict[str, int], passes: dict[str, int],
                state: dict, name: str, cfg: Any, run_dir: Path) -> LoopFlops:
    parameters = {net_name: _params(net) for net_name, net in algo.networks.items()}
    return LoopFlops(parameters, _flops(upd), _flops(act), scoring, int(state["algo_updates"]),
                     int(state["counters"]["step"]), algo=name, scoring_passes=passes, pathway=cfg.pathway.pathway,
                     run_dir=str(run_dir))


def format_loop_flops(r: LoopFlops) -> str:
    acting = "actor + value" if r.algo == "ppo" else "one Q-network forward"
    one = {"update": Cost(1, r.update["dense"], r.update["pathway"]),
           f"environment step ({acting})": Cost(1, r.step["dense"], r.step["pathway"])}
    run = {"minibatch updates": Cost(r.updates, r.updates * r.update["dense"], r.updates * r.update["pathway"]),
           "acting": Cost(r.steps, r.steps * r.step["dense"], r.steps * r.step["pathway"])}
    for n, v in r.scoring.items():
        run[f"mask scoring: {n}"] = Cost(r.scoring_passes.get(n), 0, v)
    run["total"] = total(run.values())
    return report_text(f"FLOPs of {r.run_dir} ({r.algo.upper()}, {r.pathway}, {r.updates:,} minibatch updates, "
                       f"{r.steps:,} steps)",
                       _text_params(r.parameters), [("one update, one step", one, False), ("whole run", run, True)],
                       notes=["evaluation episodes are not included"])


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
