"""Registries: config names → algorithm and pathway objects."""

from __future__ import annotations

from ..algos.sac import SAC
from ..engine.sparse_exec import enable_sparse_execution, resolve_sparse
from ..errors import UsageError
from ..pathways import (DAPD, DST_PRESETS, DynamicSparse, Never, Pathway, Periodic, RandomStatic,
                        StaticSNIP, WarmupFreeze)
from ..pathways.scores import DATA_SCORES
from .config import DYNAMIC, Config


def wants_sparse(cfg: Config, device, keeps: list[float]) -> bool:
    """Whether ``--sparse`` resolves to the sparse kernels for this run (pathways of keep ratios ``keeps``).
    ``auto`` means where they were measured to win (benchmarks/RESULTS.md): on the CPU, pathways of <= 30%,
    for SAC and DQN (batches of 256 and 32 over wide layers) but not PPO, whose batch-1 rollouts and 64-sample minibatches over small layers leave the
    kernels' per-call overhead larger than the multiply-adds they save (0.83-0.93x the masked dense path),
    and not multi-task offline runs, where one kernel call per task measured slower than the batched dense
    bmm (benchmarks/offline_throughput.py --tasks 10: 0.6-1.0x of masked dense)."""
    mode = cfg.run.sparse
    multitask_offline = cfg.run.benchmark is not None and cfg.offline.dataset is not None
    if mode == "auto" and (cfg.run.algo == "ppo" or multitask_offline):
        mode = "off"
    return resolve_sparse(mode, device, keeps, cfg.pathway.pathway == "dense")


def use_sparse_execution(cfg: Config, algo, device) -> bool:
    """Switch ``algo``'s masked layers (target copies included) to the sparse kernels where `wants_sparse`
    says so; returns whether it did. The one place every loop asks."""
    on = wants_sparse(cfg, device, [cfg.keep_ratio_of(n) for n in algo.networks])
    if on:
        enable_sparse_execution(*algo.networks.values(), *(t for ts in algo.tied.values() for t in ts))
    return on


def build_pathways(cfg: Config, algo: SAC, optimizers: dict) -> dict[str, Pathway]:
    """One `Pathway` per masked network of ``algo`` (none for ``dense``)."""
    p = cfg.pathway
    if p.pathway == "dense":
        return {}
    out = {}
    for i, (name, net) in enumerate(algo.networks.items()):
        seed = cfg.run.seed * 1000 + i
        keep = cfg.keep_ratio_of(name)
        prune, reset = p.prune, p.adam_on_change == "zero"
        if p.pathway == "dapd":
            method = DAPD(keep, p.moving_average, p.scope, cfg.score_of(name), seed=seed,
                          synflow_rounds=p.synflow_rounds)
            schedule = WarmupFreeze(p.mask_every or None, cfg.resolved_freeze_return(), p.freeze_step)
        elif p.pathway == "static":
            method = StaticSNIP(keep, p.scope, cfg.score_of(name), seed=seed, synflow_rounds=p.synflow_rounds)
            schedule = Never(f"static {cfg.score_of(name)} mask")
        elif p.pathway == "random":
            method, schedule = RandomStatic(keep, p.scope, seed=seed), Never("random static mask")
        else:
            method, schedule, reset = dynamic_sparse(cfg, keep, seed)
            prune = "zero"           # sparse training: inactive weights are zero, new ones start there
        out[name] = Pathway(net, method, schedule, optimizers.get(name), tied=algo.tied.get(name, ()),
                            prune=prune, reset_optimizer=reset, entry_rule=p.entry_rule)
    return out


def dst_settings(cfg: Config) -> dict:
    """ΔT, ζ0 and end fraction of a SET/RigL/RLx2 run: the flags, else the published values."""
    p, d = cfg.pathway, DST_PRESETS[cfg.pathway.pathway]
    return {"every": p.update_every or d.every,
            "drop_fraction": d.drop_fraction if p.drop_fraction is None else p.drop_fraction,
            "end": d.end if p.update_end is None else p.update_end}


def dynamic_sparse(cfg: Config, keep: float, seed: int) -> tuple[DynamicSparse, Periodic, bool]:
    d, s = DST_PRESETS[cfg.pathway.pathway], dst_settings(cfg)
    end = max(1, int(s["end"] * cfg.run.steps))
    method = DynamicSparse(keep, grow=d.grow, drop_fraction=s["drop_fraction"], end_step=end,
                           distribution=cfg.pathway.distribution, init=d.init, seed=seed)
    return method, Periodic(s["every"], start=cfg.run.seed_steps, end=end), d.reset_optimizer


def check_reachable(cfg: Config, algo: SAC) -> None:
    """Fail early, with the layer named, when a keep ratio leaves a layer without weights."""
    if cfg.pathway.pathway not in DYNAMIC:
        return
    for name, net in algo.networks.items():
        try:
            dynamic_sparse(cfg, cfg.keep_ratio_of(name), 0)[0].counts(net)
        except ValueError as exc:
            raise UsageError(f"--pathway {cfg.pathway.pathway}, {name}: {exc}") from None


def needs_init_data(cfg: Config) -> bool:
    """Whether the initial mask is scored on data (SNIP) rather than drawn without it."""
    p = cfg.pathway
    scores = {p.score, p.actor_score or p.score, p.critic_score or p.score}
    return p.pathway in ("dapd", "static") and bool(scores & set(DATA_SCORES))


def uses_rlx2_extras(cfg: Config) -> bool:
    return cfg.pathway.pathway == "rlx2"

