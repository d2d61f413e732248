"""Registries: config names → algorithm and pathway objects."""

from __future__ import annotations

from ..algos.sac import SAC
from ..pathways import DAPD, Never, Pathway, RandomStatic, StaticSNIP, WarmupFreeze
from .config import Config


def build_pathways(cfg: Config, algo: SAC, optimizers: dict) -> dict[str, Pathway]:
    """One `Pathway` per masked network of ``algo`` (none for ``dense``)."""
    p = cfg.pathway
    if p.pathway == "dense":
        return {}
    out = {}
    for i, (name, net) in enumerate(algo.networks.items()):
        seed = cfg.run.seed * 1000 + i
        if p.pathway == "dapd":
            method = DAPD(p.keep_ratio, p.moving_average, p.scope, p.score, seed=seed)
            schedule = WarmupFreeze(p.mask_every or None, cfg.resolved_freeze_return(), p.freeze_step)
        elif p.pathway == "static":
            method, schedule = StaticSNIP(p.keep_ratio, p.scope, p.score, seed=seed), Never("static SNIP mask")
        else:
            method, schedule = RandomStatic(p.keep_ratio, p.scope, seed=seed), Never("random static mask")
        out[name] = Pathway(net, method, schedule, optimizers.get(name),
                            tied=algo.tied.get(name, ()), prune=p.prune)
    return out


def needs_init_data(cfg: Config) -> bool:
    """Whether the initial mask is scored on data (SNIP) rather than drawn without it."""
    return cfg.pathway.pathway in ("dapd", "static") and cfg.pathway.score == "snip"
