"""FLOPs of offline runs (BCQ, IQL; single task and MT10), PPO and DQN runs, counted by running the real code once.

The SAC accounting (flops.py) is analytic because SAC's passes are few and fixed. BCQ's are not (the
critic target decodes 10 next actions per state through the VAE, the perturbation actor and the
target critic; acting scores 100 decodes), so here every linear layer (`MaskedLinear`, `TaskLinear`)
counts its own multiply-accumulates while one real update, one action and one NPF scoring pass run
on a copy of the run's networks (DQN: its convolutions too, masked or dense):

* forward: rows · nnz, where rows are the samples through the layer (all tasks for a task layer; for a
  convolution, samples × output positions) and nnz its active weights (all of them for the dense count);
* backward, when the pass is differentiated: the weight gradient rows · nnz if the layer's weight
  takes a gradient, the input gradient rows · nnz if its input needs one (the first layer on data
  does not) — the passes autograd runs, the convention of torch's `FlopCounterMode` (on dense
  networks the counts equal its count exactly; tested).

1 MAC = 2 FLOPs; matmuls only (as flops.py). Scoring passes (NPF's single shot, DAPD's rescoring) are
counted differently: the run's own score function runs once under torch's `FlopCounterMode` on the dense
networks (GraSP's Hessian-vector product and SynFlow's rounds have passes the layer hooks do not see).
The whole run = updates × one update + the NPF scoring; evaluation episodes are not included (their length
is not logged for offline runs).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..pathways.layers import MaskedLinear
from ..pathways.masks import unmasked
from ..pathways.multitask import TaskLinear
from .flops import CONVENTION, MAC_FLOPS


@dataclass
class Macs:
    dense: int = 0
    active: int = 0

    def add(self, other: "Macs") -> None:
        self.dense += other.dense
        self.active += other.active


def _weights(layer: nn.Module) -> tuple[int, int]:
    """(all weights, active weights) a pass through ``layer`` multiplies, summed over tasks."""
    dense = layer.weight.numel()
    if isinstance(layer, TaskLinear):
        active = int(layer.mask.sum()) if layer.use_mask else dense
    else:
        active = int(layer.mask.sum()) if getattr(layer, "use_mask", False) else dense
    return dense, active


def scoring_pass_flops(score: str, net: nn.Module, loss, *, keep_ratio: float, synflow_rounds: int) -> int:
    """FLOPs of one scoring pass of ``net`` by ``score``: the real score function run once under torch's
    `FlopCounterMode` (matmuls and convolutions: GraSP's double backward and SynFlow's rounds included;
    the scored network runs dense, so this is its dense cost). Magnitude and random scores cost none."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..pathways.scores import network_scores
    with FlopCounterMode(display=False) as fc:
        network_scores(score, net, loss, keep_ratio=keep_ratio, synflow_rounds=synflow_rounds,
                       generator=torch.Generator().manual_seed(0))
    return int(fc.get_total_flops())


def config_scoring_flops(cfg, name: str, net: nn.Module, loss) -> int:
    """`scoring_pass_flops` with the run's own score, keep ratio and SynFlow rounds for network ``name``."""
    return scoring_pass_flops(cfg.score_of(name), net, loss, keep_ratio=cfg.keep_ratio_of(name),
                              synflow_rounds=cfg.pathway.synflow_rounds)


@contextmanager
def counting(nets: dict[str, nn.Module]):
    """Count every linear layer's MACs per network name while the block runs; yields the totals."""
    totals = {name: Macs() for name in nets}
    handles = []

    def hook(name: str):
        def fn(layer: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            x = inputs[0]
            if isinstance(layer, nn.Conv2d):            # every output position is one row of the weight
                rows = out.numel() // layer.out_channels
            else:
                rows = x.numel() // layer.in_features
            if isinstance(layer, TaskLinear):
                rows //= layer.tasks                    # a task's rows meet only its own weight slice
            passes = 1
            if torch.is_grad_enabled():
                passes += int(layer.weight.requires_grad) + int(x.requires_grad)
            dense, active = _weights(layer)
            totals[name].add(Macs(passes * rows * dense, passes * rows * active))
        return fn

    seen: set[int] = set()
    for name, net in nets.items():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, TaskLinear)) and id(m) not in seen:
                seen.add(id(m))
                handles.append(m.register_forward_hook(hook(name)))
    try:
        yield totals
    finally:
        for h in handles:
            h.remove()


@dataclass
class OfflineFlops:
    algo: str
    pathway: str
    tasks: int
    parameters: dict[str, dict[str, int]]        # network -> total / active weights (per task: mean)
    update: dict[str, dict[str, int]]            # network -> dense / pathway FLOPs of one update
    action: dict[str, int]                       # dense / pathway FLOPs of one action (all tasks)
    scoring: int                                 # FLOPs of the NPF scoring pass (once; 0 if none)
    updates: int
    convention: str = CONVENTION

    def totals(self) -> dict[str, int]:
        dense = sum(v["dense"] for v in self.update.values())
        path = sum(v["pathway"] for v in self.update.values())
        return {"update_dense": dense, "update_pathway": path, "run_dense": self.updates * dense,
                "run_pathway": self.updates * path + self.scoring}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def _nets(algo: nn.Module) -> dict[str, nn.Module]:
    named = dict(algo.named_children())
    return {n: named[n] for n in named if isinstance(named[n], nn.Module) and any(
        isinstance(m, (MaskedLinear, TaskLinear)) for m in named[n].modules())}


def _flops(m: dict[str, Macs], key: str) -> dict[str, int]:
    return {n: MAC_FLOPS * getattr(v, key) for n, v in m.items()}


def offline_flops_of_run(run_dir: str | Path) -> OfflineFlops:
    """Load an offline run's latest checkpoint into its algorithm and count one update, one action and
    the NPF scoring pass (see the module docstring)."""
    from ..training import checkpoint
    from ..training.offline import build_algo
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    ckpt = checkpoint.latest(run_dir)
    meta = checkpoint.read_meta(ckpt)
    tasks = len(meta.get("tasks") or [])
    algo = build_algo(cfg, meta["obs_dim"], meta["act_dim"], tasks=tasks, per_task_heads=meta.get("heads") == "per-task")
    state = checkpoint.load_state(ckpt)
    try:
        algo.load_state_dict(state["algo"])
    except (RuntimeError, KeyError) as exc:
        raise UsageError(f"checkpoint {str(ckpt)!r} does not fit its own config: {str(exc).splitlines()[0]}") from None
    nets = _nets(algo)
    shape = (tasks,) if tasks else ()
    batch = algo.cfg.batch_size

    def fake_batch(n: int):
        from ..algos.common import random_batch
        return random_batch(n, algo.obs_dim, algo.act_dim, torch.Generator().manual_seed(0), shape)

    work = copy.deepcopy(algo)
    work_nets = _nets(work)
    opts = work.make_optimizers()
    with counting(work_nets) as upd:
        work.update(fake_batch(batch), opts, work.make_schedulers(opts))
    obs = torch.randn(*shape, algo.obs_dim).numpy()
    with counting(nets) as act:
        algo.act(obs, deterministic=True)
    scoring = 0
    if cfg.pathway.pathway == "npf":
        p, o = cfg.pathway, cfg.offline
        losses = algo.losses()
        for name, net in algo.networks.items():
            batches = [fake_batch(p.score_batch) for _ in range(o.npf_batches)]
            scoring += config_scoring_flops(cfg, name, net, lambda n=name, bs=batches: sum(losses[n](b) for b in bs))
    parameters = {}
    for name in algo.networks:
        layers = [m for m in nets[name].modules() if isinstance(m, (MaskedLinear, TaskLinear))]
        dense = sum(_weights(m)[0] for m in layers)
        active = sum(_weights(m)[1] for m in layers)
        per = max(tasks, 1)
        parameters[name] = {"total": dense // per, "active": active // per}
    update = {n: {"dense": MAC_FLOPS * v.dense, "pathway": MAC_FLOPS * v.active} for n, v in upd.items() if v.dense}
    action = {"dense": MAC_FLOPS * sum(v.dense for v in act.values()),
              "pathway": MAC_FLOPS * sum(v.active for v in act.values())}
    return OfflineFlops(cfg.run.algo, cfg.pathway.pathway, tasks, parameters, update, action, scoring,
                        int(state["algo_updates"]))


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def format_offline_flops(r: OfflineFlops) -> str:
    per = f", per task over {r.tasks} tasks" if r.tasks else ""
    lines = [f"offline {r.algo.upper()} run, pathway {r.pathway}{per}; {r.convention}", "",
             "| network | weights | active | density |", "|---|---|---|---|"]
    for n, v in r.parameters.items():
        lines.append(f"| {n} | {v['total']:,} | {v['active']:,} | {v['active'] / v['total']:.3f} |")
    lines += ["", "| one update | dense FLOPs | pathway FLOPs | dense / pathway |", "|---|---|---|---|"]
    for n, v in r.update.items():
        lines.append(f"| {n} | {_si(v['dense'])} | {_si(v['pathway'])} | {v['dense'] / max(v['pathway'], 1):.1f}x |")
    t = r.totals()
    lines.append(f"| total | {_si(t['update_dense'])} | {_si(t['update_pathway'])} | "
                 f"{t['update_dense'] / max(t['update_pathway'], 1):.1f}x |")
    a = r.action
    lines += ["", f"one action{' (all tasks)' if r.tasks else ''}: dense {_si(a['dense'])}, pathway {_si(a['pathway'])} "
              f"FLOPs ({a['dense'] / max(a['pathway'], 1):.1f}x)"]
    if r.scoring:
        lines.append(f"NPF scoring (once, dense): {_si(r.scoring)} FLOPs")
    lines.append(f"whole run ({r.updates:,} updates, evaluation not included): dense {_si(t['run_dense'])}, "
                 f"pathway {_si(t['run_pathway'])} FLOPs ({t['run_dense'] / max(t['run_pathway'], 1):.1f}x)")
    return "\n".join(lines)


# ---- PPO and DQN ---------------------------------------------------------------------------------

@dataclass
class LoopFlops:
    """An online run (PPO or DQN): one update, one acting step, the scoring passes, and their counts."""
    parameters: dict[str, dict[str, int]]
    update: dict[str, int]           # dense / pathway FLOPs of one minibatch update
    step: dict[str, int]             # dense / pathway FLOPs of acting at one environment step
    scoring: dict[str, int]          # dense FLOPs of all DAPD scoring passes of the run so far
    updates: int
    steps: int
    convention: str = CONVENTION
    algo: str = "ppo"

    def totals(self) -> dict[str, int]:
        dense = self.updates * self.update["dense"] + self.steps * self.step["dense"]
        path = self.updates * self.update["pathway"] + self.steps * self.step["pathway"] + sum(self.scoring.values())
        return {"run_dense": dense, "run_pathway": path}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals()}


def ppo_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One minibatch update and one acting step of a PPO run, counted per layer at its final masks
    (warm-up updates ran at other masks of the same size); scoring passes from ``pathway.jsonl``."""
    from ..algos.ppo import PPO, PPOConfig, RolloutBatch
    from ..training import checkpoint
    from ..training.logging import read_jsonl
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    ckpt = checkpoint.latest(run_dir)
    meta = checkpoint.read_meta(ckpt)
    state = checkpoint.load_state(ckpt)
    discrete = bool(meta.get("discrete"))
    algo = PPO(meta["obs_dim"], meta["act_dim"], PPOConfig(hidden=cfg.ppo.ppo_hidden), discrete=discrete)
    try:
        algo.load_state_dict(state["algo"])
    except (RuntimeError, KeyError) as exc:
        raise UsageError(f"checkpoint {str(ckpt)!r} does not fit its own config: {str(exc).splitlines()[0]}") from None
    g = cfg.ppo
    size = g.rollout_steps * g.num_envs // g.minibatches

    def batch(n: int) -> RolloutBatch:
        action = torch.randint(0, algo.act_dim, (n,)).float() if discrete else torch.randn(n, algo.act_dim)
        return RolloutBatch(torch.randn(n, algo.obs_dim), action, torch.zeros(n), torch.randn(n), torch.randn(n),
                            torch.randn(n))

    nets = _nets(algo)
    work = copy.deepcopy(algo)
    with counting(_nets(work)) as upd:
        work.update(batch(size), work.make_optimizers())
    with counting(nets) as act:
        algo.step(torch.randn(1, algo.obs_dim))
    scoring: dict[str, int] = {}
    events = read_jsonl(run_dir / "pathway.jsonl")
    for name in algo.networks:
        passes = sum(1 for e in events if e["net"] == name and e["event"] in ("init", "update")
                     and (cfg.pathway.pathway in ("dapd", "static")))
        if passes:
            with unmasked(*nets.values()):             # DAPD scores the dense networks
                one = config_scoring_flops(cfg, name, algo.networks[name],
                                           lambda n=name: algo.losses()[n](batch(cfg.pathway.score_batch)))
            scoring[name] = passes * one
    return _loop_flops(algo, upd, act, scoring, state, "ppo")


def _loop_flops(algo, upd: dict[str, Macs], act: dict[str, Macs], scoring: dict[str, int], state: dict,
                name: str) -> LoopFlops:
    parameters = {}
    for net_name, net in algo.networks.items():
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        parameters[net_name] = {"total": sum(_weights(m)[0] for m in layers),
                                "active": sum(_weights(m)[1] for m in layers)}
    return LoopFlops(parameters,
                     {"dense": MAC_FLOPS * sum(v.dense for v in upd.values()),
                      "pathway": MAC_FLOPS * sum(v.active for v in upd.values())},
                     {"dense": MAC_FLOPS * sum(v.dense for v in act.values()),
                      "pathway": MAC_FLOPS * sum(v.active for v in act.values())},
                     scoring, int(state["algo_updates"]), int(state["counters"]["step"]), algo=name)


def dqn_flops_of_run(run_dir: str | Path) -> LoopFlops:
    """One update (Q-network forward and backward, target forward) and one greedy action of a DQN run at
    its final masks, convolutions included; ε-greedy's random actions are charged a forward pass too."""
    from ..algos.dqn import DQNBatch
    from ..training import checkpoint
    from ..training.dqn_loop import make_dqn
    from ..training.logging import read_jsonl
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    ckpt = checkpoint.latest(run_dir)
    meta = checkpoint.read_meta(ckpt)
    state = checkpoint.load_state(ckpt)
    shape = tuple(meta["obs_shape"])
    algo = make_dqn(cfg, shape, int(meta["n_actions"]))
    try:
        algo.load_state_dict(state["algo"])
    except (RuntimeError, KeyError) as exc:
        raise UsageError(f"checkpoint {str(ckpt)!r} does not fit its own config: {str(exc).splitlines()[0]}") from None

    def batch(n: int) -> DQNBatch:
        obs = torch.zeros(n, *shape)
        return DQNBatch(obs, torch.zeros(n, dtype=torch.long), torch.zeros(n), obs, torch.ones(n))

    work = copy.deepcopy(algo)
    with counting({"q": work.q, "q_target": work.q_target}) as upd:
        work.update(batch(cfg.dqn.dqn_batch_size), work.make_optimizers())
    with counting({"q": algo.q}) as act, torch.no_grad():
        algo.q(torch.zeros(1, *shape))
    scoring: dict[str, int] = {}
    passes = sum(1 for e in read_jsonl(run_dir / "pathway.jsonl") if e["event"] in ("init", "update"))
    loss = lambda: algo.td_loss(batch(cfg.pathway.score_batch))     # noqa: E731
    if passes and cfg.pathway.pathway in ("dapd", "static"):
        with unmasked(algo.q, algo.q_target):
            scoring["q"] = passes * config_scoring_flops(cfg, "q", algo.q, loss)
    elif passes and cfg.pathway.pathway == "rigl":                 # grows on the masked network's dense gradient
        scoring["q"] = passes * scoring_pass_flops("grad", algo.q, loss, keep_ratio=1.0, synflow_rounds=1)
    return _loop_flops(algo, upd, act, scoring, state, "dqn")


def format_loop_flops(r: LoopFlops) -> str:
    lines = [f"{r.algo.upper()} run; {r.convention}", "", "| network | weights | active | density |",
             "|---|---|---|---|"]
    for n, v in r.parameters.items():
        lines.append(f"| {n} | {v['total']:,} | {v['active']:,} | {v['active'] / v['total']:.3f} |")
    u, s, t = r.update, r.step, r.totals()
    lines += ["", f"one minibatch update: dense {_si(u['dense'])}, pathway {_si(u['pathway'])} FLOPs "
              f"({u['dense'] / max(u['pathway'], 1):.1f}x)",
              f"one environment step ({'actor + value' if r.algo == 'ppo' else 'one Q-network forward'}): dense {_si(s['dense'])}, pathway {_si(s['pathway'])} FLOPs"]
    if r.scoring:
        lines.append("mask scoring passes (dense): " + ", ".join(f"{n} {_si(v)}" for n, v in r.scoring.items()))
    lines.append(f"whole run ({r.updates:,} minibatch updates, {r.steps:,} steps, evaluation not included): "
                 f"dense {_si(t['run_dense'])}, pathway {_si(t['run_pathway'])} FLOPs "
                 f"({t['run_dense'] / max(t['run_pathway'], 1):.1f}x)")
    return "\n".join(lines)


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
