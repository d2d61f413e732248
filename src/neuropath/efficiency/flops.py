"""Exact FLOP accounting of SAC with pathways, from masks and the run's own logs.

Why analytic: the networks run masked-dense (``W ⊙ m``), so a shape-based counter such as
torch's `FlopCounterMode` charges every stored weight, and it sees nothing of a sparse
kernel. The cost a pathway *needs* is 2·B·nnz(mask) per layer and pass, which we count
here; on dense networks the count equals `FlopCounterMode`'s exactly (tested).

Convention (the one `FlopCounterMode` uses): one multiply-accumulate (MAC) = 2 FLOPs, and
only matrix multiplies are counted. Bias adds, activations, the tanh-Gaussian head,
losses, the optimizer, Polyak averaging and top-k selection are not (they are O(width),
not O(weights)). MACs = FLOPs / 2 are always reported too, for fvcore-style and poster
numbers. Per layer, for a batch of B samples:

* forward: B·nnz MACs;
* backward: weight gradient B·nnz, plus input gradient B·nnz unless nothing upstream needs
  it (the first layer of a network whose input needs no gradient; autograd skips it,
  and so does `FlopCounterMode`'s count).

Dense numbers put nnz = in·out. The passes of one SAC update (`SAC.update`), per sample,
with A, C, T the forward MACs of actor, twin critic, target critic and A₁, C₁ their
first layers:

* critic update: actor on s' (A) + target (T) + critic fwd+bwd (3C − C₁);
* actor update (every ``actor_every``): actor fwd+bwd (3A − A₁) + critic fwd and
  backward to the action only (2C, input gradients of every layer, no weight gradients);
* RLx2 n-step targets: (n − 1)·A more, the actor on the intermediate states.

Mask events are counted apart: a DAPD (SNIP) scoring pass is a dense fwd+bwd of the
scoring loss on ``score_batch`` samples; a RigL/RLx2 topology update is one gradient of
the network's own training loss with that network dense and the others masked; SET and
magnitude/random scores need no matmul.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import UsageError
from ..pathways.layers import MaskedLinear
from ..training import checkpoint
from ..training.logging import read_csv, read_jsonl

MAC_FLOPS = 2
CONVENTION = ("1 MAC = 2 FLOPs (torch FlopCounterMode's convention); matmuls only: bias adds, "
              "activations, losses, optimizer and Polyak updates are not counted")
SAC_NETS = ("actor", "critic", "critic_target")

if TYPE_CHECKING:
    from ..training.config import Config


# ---- what a network holds --------------------------------------------------------------------

@dataclass(frozen=True)
class LayerCount:
    """One linear layer: its shape, active weights, and whether it reads the network input."""
    name: str
    in_features: int
    out_features: int
    active: int
    bias: int
    first: bool

    @property
    def weights(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class NetCount:
    """The linear layers of one network, in forward order."""
    name: str
    layers: tuple[LayerCount, ...]

    def macs(self, *, dense: bool = False, first_only: bool = False) -> int:
        """Forward MACs per sample (of the first layers only with ``first_only``)."""
        return sum(layer.weights if dense else layer.active for layer in self.layers
                   if layer.first or not first_only)

    def params(self) -> dict[str, int]:
        """Parameter counts. ``active`` = active weights + every bias (biases are never
        masked); ``active_weights`` leaves biases out, as RLx2's "size" does."""
        weights = sum(layer.weights for layer in self.layers)
        active = sum(layer.active for layer in self.layers)
        biases = sum(layer.bias for layer in self.layers)
        return {"total": weights + biases, "active": active + biases, "weights": weights,
                "active_weights": active, "biases": biases}

    def layer_active(self) -> dict[str, int]:
        return {layer.name: layer.active for layer in self.layers}

    def with_active(self, active: Mapping[str, int]) -> "NetCount":
        """The same network with other per-layer active counts (a logged earlier mask)."""
        return NetCount(self.name, tuple(LayerCount(x.name, x.in_features, x.out_features, int(active[x.name]),
                                                    x.bias, x.first) for x in self.layers))


def _first_flags(names: list[str]) -> list[bool]:
    """A layer reads its network's input when it is the first linear layer of its parent
    container (``net.0``; ``q1.0`` and ``q2.0`` of the twin critic)."""
    seen: set[str] = set()
    out = []
    for name in names:
        parent = name.rpartition(".")[0]
        out.append(parent not in seen)
        seen.add(parent)
    return out


def count_network(net: nn.Module, name: str = "") -> NetCount:
    """Counts of a live module's linear layers (`MaskedLinear` with its active mask;
    plain `nn.Linear` as dense)."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    layers = []
    for (n, m), first in zip(found, _first_flags([n for n, _ in found])):
        active = m.weight.numel()
        if isinstance(m, MaskedLinear) and m.use_mask:
            active = int(m.mask[m.active_task].sum())
        layers.append(LayerCount(n, m.in_features, m.out_features, active,
                                 0 if m.bias is None else m.bias.numel(), first))
    return NetCount(name, tuple(layers))


def count_state(state: Mapping[str, Any], prefix: str) -> NetCount:
    """Counts of the linear layers under ``prefix`` (e.g. ``"actor"``) of a saved state dict:
    2-D ``*.weight`` entries, counted by their ``mask`` unless the layer's extra state says
    it runs unmasked (a dense run's masks are all ones anyway)."""
    pre = prefix + "."
    names = [k[len(pre):-len(".weight")] for k, v in state.items()
             if k.startswith(pre) and k.endswith(".weight") and getattr(v, "dim", lambda: 0)() == 2]
    layers = []
    for n, first in zip(names, _first_flags(names)):
        key = pre + n
        w = state[key + ".weight"]
        extra = state.get(key + "._extra_state") or {}
        mask = state.get(key + ".mask")
        active = w.numel()
        if mask is not None and extra.get("use_mask", True):
            active = int(mask[int(extra.get("active_task", 0))].sum())
        bias = state.get(key + ".bias")
        layers.append(LayerCount(n, int(w.shape[1]), int(w.shape[0]), active,
                                 0 if bias is None else bias.numel(), first))
    return NetCount(prefix, tuple(layers))


def sac_counts(source: nn.Module | Mapping[str, Any]) -> dict[str, NetCount]:
    """``{"actor", "critic", "critic_target"}`` counts of a `SAC` agent or its state dict."""
    if isinstance(source, nn.Module):
        return {n: count_network(getattr(source, n), n) for n in SAC_NETS}
    return {n: count_state(source, n) for n in SAC_NETS}


# ---- FLOPs of the passes -------------------------------------------------------------------------

def forward_flops(net: NetCount, batch: int = 1, *, dense: bool = False) -> int:
    """FLOPs of one forward pass of ``batch`` samples."""
    return MAC_FLOPS * batch * net.macs(dense=dense)


def _train_pass(net: NetCount, dense: bool) -> int:
    """MACs/sample of forward + weight gradients + input gradients except the first layers'."""
    return 3 * net.macs(dense=dense) - net.macs(dense=dense, first_only=True)


def update_flops(nets: Mapping[str, NetCount], batch_size: int, *, actor_update: bool = True,
                 nstep: int = 1, dense: bool = False) -> dict[str, int]:
    """FLOPs of one `SAC.update` on ``batch_size`` samples, by part: ``critic`` (TD target
    and critic fwd+bwd), ``actor`` (0 on updates that skip the actor) and ``nstep`` (the
    actor on RLx2's n−1 intermediate states, 0 for 1-step batches)."""
    a, c, t = nets["actor"], nets["critic"], nets["critic_target"]
    critic = a.macs(dense=dense) + t.macs(dense=dense) + _train_pass(c, dense)
    actor = _train_pass(a, dense) + 2 * c.macs(dense=dense) if actor_update else 0
    extra = (nstep - 1) * a.macs(dense=dense) if nstep > 1 else 0
    return {k: MAC_FLOPS * batch_size * v for k, v in (("critic", critic), ("actor", actor), ("nstep", extra))}


SCORING_RULES = ("snip", "gradient", "none")


def scoring_flops(nets: Mapping[str, NetCount], net: str, rule: str, batch: int) -> int:
    """FLOPs of one mask event of ``net`` (actor or critic) on ``batch`` samples.

    ``snip`` (DAPD, static SNIP): every network dense (`unmasked`), gradient of DAPD's
    scoring loss w.r.t. ``net``'s weights; the critic's loss is its TD loss plus the actor
    loss through it, so its critic passes run twice. ``gradient`` (RigL, RLx2): ``net``
    dense, the others masked, gradient of ``net``'s own training loss. ``none``: SET's
    random growth, magnitude or random scores: no matmul."""
    if rule not in SCORING_RULES:
        raise ValueError(f"unknown scoring rule {rule!r}; allowed: {', '.join(SCORING_RULES)}")
    if net not in ("actor", "critic"):
        raise ValueError(f"no mask events for network {net!r}")
    if rule == "none":
        return 0
    a, c, t = nets["actor"], nets["critic"], nets["critic_target"]
    snip = rule == "snip"
    da, dc, dt = snip or net == "actor", snip or net == "critic", snip
    if net == "actor":                  # actor_loss: actor fwd+bwd, critic fwd and input gradients
        macs = _train_pass(a, da) + 2 * c.macs(dense=dc)
    else:                               # critic_loss: actor on s', target, critic fwd+bwd
        macs = a.macs(dense=da) + t.macs(dense=dt) + _train_pass(c, dc)
        if snip:                        # + actor_loss(critic_grad=True): actor fwd, critic fwd+bwd
            macs += a.macs(dense=True) + _train_pass(c, True)
    return MAC_FLOPS * batch * macs


# ---- a whole run ---------------------------------------------------------------------------------

@dataclass
class Cost:
    """A line of the run's bill: how many times, and FLOPs in all, dense vs pathway."""
    count: int | None       # None on sums of unlike lines
    dense: int
    pathway: int

    @property
    def ratio(self) -> float | None:
        """dense / pathway; None where either is zero (a mask event has no dense counterpart)."""
        return self.dense / self.pathway if self.pathway and self.dense else None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "dense_flops": self.dense, "pathway_flops": self.pathway,
                "dense_macs": self.dense // MAC_FLOPS, "pathway_macs": self.pathway // MAC_FLOPS,
                "ratio": self.ratio}


@dataclass
class FlopReport:
    """FLOPs of one run. ``dense`` columns are the same passes with every weight active and
    no mask events (a dense SAC run); ``ratio`` = dense / pathway."""
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


def _scoring_rule(cfg: Config, net: str) -> tuple[str, str]:
    """(rule of init events, rule of update events) of network ``net`` under the run's pathway method.
    ``grad`` scores run SNIP's passes (the dense network on θ ⊙ m); GraSP and SynFlow are ``counted``
    (their passes measured once on a dense copy, `_counted_scoring`); magnitude and random cost nothing."""
    rule = {"snip": "snip", "grad": "snip", "grasp": "counted", "synflow": "counted"}.get(cfg.score_of(net), "none")
    return {"dapd": (rule, rule), "static": (rule, "none"), "rigl": ("none", "gradient"),
            "rlx2": ("none", "gradient")}.get(cfg.pathway.pathway, ("none", "none"))


def _counted_scoring(cfg: Config, final: Mapping[str, NetCount], net: str) -> int:
    """FLOPs of one GraSP or SynFlow scoring pass of ``net``: the score run once under `FlopCounterMode` on a
    dense SAC of the run's shapes, every network dense as in the training loop's scoring."""
    from ..algos.common import random_batch
    from ..algos.sac import SAC
    from ..pathways import unmasked
    from .counted_flops import config_scoring_flops
    obs_dim = final["actor"].layers[0].in_features
    act_dim = final["critic"].layers[0].in_features - obs_dim
    sac = SAC(obs_dim, act_dim, cfg.sac)
    b = random_batch(cfg.pathway.score_batch, obs_dim, act_dim, torch.Generator().manual_seed(0))
    losses = sac.losses()
    with unmasked(sac):
        return config_scoring_flops(cfg, net, sac.networks[net], lambda: losses[net](b))


Timeline = list[tuple[int, dict[str, NetCount]]]


def _timeline(events: list[dict], final: dict[str, NetCount], notes: list[str]) -> Timeline:
    """[(step, networks)]: the masks in effect for updates after ``step`` (until the next
    entry), rebuilt from the per-layer densities logged with every mask event (6 decimals:
    exact for layers under ~10⁶ weights). The target critic follows the critic. Without a
    usable log every update is charged at the final (checkpoint) masks."""
    mask_events = [e for e in events if e.get("event") in ("init", "update") and e.get("net") in ("actor", "critic")]
    if not mask_events:
        return [(0, final)]
    out: Timeline = []
    current = dict(final)
    try:
        for e in sorted(mask_events, key=lambda e: e["step"]):   # stable: actor before critic
            net = final[e["net"]]
            numel = {x.name: x.weights for x in net.layers}
            layers = e["layers"]
            if set(layers) != set(numel):
                raise KeyError
            active = {n: round(float(layers[n]) * numel[n]) for n in numel}
            current[e["net"]] = net.with_active(active)
            if e["net"] == "critic":
                current["critic_target"] = final["critic_target"].with_active(active)
            if out and out[-1][0] == e["step"]:
                out[-1] = (e["step"], dict(current))
            else:
                out.append((int(e["step"]), dict(current)))
    except (KeyError, TypeError, ValueError):
        notes.append("pathway.jsonl lacks per-layer densities: every update is charged at the final masks")
        return [(0, final)]
    last = out[-1][1]
    if any(last[n].layer_active() != final[n].layer_active() for n in ("actor", "critic")):
        notes.append("the last logged masks differ from the checkpoint's: every update is charged at the final masks")
        return [(0, final)]
    return out


def _multiples(lo: int, hi: int, k: int) -> int:
    """How many multiples of ``k`` lie in [lo, hi]."""
    return max(0, hi // k - (lo - 1) // k) if hi >= lo else 0


def flops_of_run(run_dir: str | Path) -> FlopReport:
    """The FLOP report of a run directory (its config, latest checkpoint, pathway.jsonl and
    metrics.csv); a `UsageError` with one clear line when the directory is not a readable run.

    Updates are counted from the checkpoint (one per step from the first step with
    ``seed_steps`` done and a full batch); each is charged at the masks in effect then.
    Acting (one actor forward per step after ``seed_steps``, plus the ``init_steps`` of
    dense acting that SNIP-scored initial masks need) and evaluation episodes (from metrics.csv) are listed apart from
    training."""
    from ..training.run_dir import load_run_config

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cfg.offline.dataset is not None:
        raise UsageError(f"{str(run_dir)!r} is an offline ({cfg.run.algo}) run: FLOP accounting covers SAC runs "
                         "so far")
    if cfg.run.benchmark is not None:
        raise UsageError(f"{str(run_dir)!r} is a multi-task ({cfg.run.benchmark}) run: `neuropath inspect` "
                         "gives its parameters and forward FLOPs per task")
    ckpt = checkpoint.latest(run_dir)
    state = checkpoint.load_state(ckpt)
    try:
        algo = state["algo"]
        final = sac_counts(algo)
        if not all(final[n].layers for n in SAC_NETS):
            raise KeyError("networks")
        step = int(state["counters"]["step"])
        updates = int(state["algo_updates"])
    except (KeyError, TypeError, ValueError, AttributeError):
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
    rlx2_delay = x.nstep_delay

    # -- updates, segment by segment of constant masks
    first = step - updates + 1                  # the updates ran at steps first..step
    timeline = _timeline(events, final, notes)
    dense_u = {k: 0 for k in ("critic", "actor", "nstep")}
    path_u = dict(dense_u)
    counts = dict(dense_u)
    for i, (at, nets) in enumerate(timeline):
        lo = max(at + 1, first) if i else first  # masks logged at step e apply from update e+1
        hi = timeline[i + 1][0] if i + 1 < len(timeline) else step
        if hi < lo:
            continue
        k_lo, k_hi = lo - first + 1, hi - first + 1
        n = {"critic": k_hi - k_lo + 1, "actor": _multiples(k_lo, k_hi, ae),
             "nstep": max(0, k_hi - max(k_lo, rlx2_delay + 1) + 1) if nstep > 1 else 0}
        per_path = update_flops(nets, B, nstep=nstep)
        per_dense = update_flops(nets, B, nstep=nstep, dense=True)
        for key in n:
            counts[key] += n[key]
            path_u[key] += n[key] * per_path[key]
            dense_u[key] += n[key] * per_dense[key]
    if len(timeline) > 1:
        notes.append(f"updates charged at the masks in effect at each step ({len(timeline)} mask states "
                     "from pathway.jsonl)")
    run: dict[str, Cost] = {
        "critic updates": Cost(counts["critic"], dense_u["critic"], path_u["critic"]),
        "actor updates": Cost(counts["actor"], dense_u["actor"], path_u["actor"]),
    }
    if nstep > 1:
        run["n-step target forwards"] = Cost(counts["nstep"], dense_u["nstep"], path_u["nstep"])

    # -- mask events (DAPD scoring, RigL/RLx2 gradients), at the masks of their time
    label = "mask scoring" if p.pathway in ("dapd", "static") else "topology updates"
    for net in ("actor", "critic"):
        init_rule, update_rule = _scoring_rule(cfg, net)
        counted = _counted_scoring(cfg, final, net) if "counted" in (init_rule, update_rule) else 0
        mine = [e for e in events if e.get("net") == net and (e.get("event") == "update" or (
            e.get("event") == "init" and init_rule != "none"))]     # free initial masks are not events
        if not mine:
            continue
        total = 0
        for e in mine:
            rule = init_rule if e["event"] == "init" else update_rule
            total += counted if rule == "counted" else scoring_flops(_masks_at(timeline, int(e["step"])), net, rule,
                                                                     p.score_batch)
        run[f"{label}: {net}"] = Cost(len(mine), 0, total)
    checks = [e for e in events if e.get("event") == "buffer"]
    if checks:    # RLx2's policy distance: one actor forward on the oldest transitions
        n_rows = sum(min(x.buffer_check_size, int(e.get("size", 0)) + int(e.get("dropped", 0))) for e in checks)
        a = final["actor"]
        run["buffer checks (actor fwd)"] = Cost(len(checks), forward_flops(a, n_rows, dense=True),
                                               forward_flops(a, n_rows))
    run["training"] = _sum(run.values())

    # -- acting and evaluation: actor forwards of one sample (forward cost = total nnz)
    a = final["actor"]
    acting = max(0, step - r.seed_steps)
    extra: dict[str, Cost] = {"acting (rollout)": Cost(acting, forward_flops(a, acting, dense=True),
                                                       forward_flops(a, acting))}
    if init_rule == "snip":
        n_init = max(p.init_steps, 1)
        extra["acting (initial scoring data)"] = Cost(n_init, 0, forward_flops(a, n_init, dense=True))
    try:
        eval_steps = sum(round(float(row["length_mean"]) * r.eval_episodes) for row in evals)
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{str(run_dir / 'metrics.csv')!r} is corrupt") from None
    extra["evaluation"] = Cost(eval_steps, forward_flops(a, eval_steps, dense=True), forward_flops(a, eval_steps))
    run.update(extra)
    run["total"] = _sum([run["training"], *extra.values()])
    if p.pathway == "dapd":
        notes.append("DAPD's warm-up changes which weights are active, not how many: forward costs "
                     "(acting, evaluation) use the final masks' total nnz, which is the same at every step")

    # -- per sample and per update, at the final masks
    forward = {"actor": Cost(1, forward_flops(final["actor"], dense=True), forward_flops(final["actor"])),
               "critic (Q1+Q2)": Cost(1, forward_flops(final["critic"], dense=True), forward_flops(final["critic"]))}
    dense_1 = update_flops(final, B, nstep=nstep, dense=True)
    path_1 = update_flops(final, B, nstep=nstep)
    per_update = {"critic update": Cost(1, dense_1["critic"], path_1["critic"]),
                  f"actor update (1 in {ae})" if ae > 1 else "actor update": Cost(1, dense_1["actor"], path_1["actor"])}
    if nstep > 1:
        per_update["n-step target forwards"] = Cost(1, dense_1["nstep"], path_1["nstep"])
    per_update["update"] = _sum(per_update.values(), count=1)

    params = {n: final[n].params() for n in SAC_NETS}
    params["all"] = {k: sum(v[k] for v in params.values()) for k in params["actor"]}
    return FlopReport(str(run_dir), r.env, p.pathway, step, updates, B, p.score_batch, params, forward,
                      per_update, run, notes)


def _masks_at(timeline: Timeline, step: int) -> dict[str, NetCount]:
    """The masks in effect just before the events of ``step``."""
    nets = timeline[0][1]
    for at, n in timeline:
        if at >= step:
            break
        nets = n
    return nets


def _sum(costs: Iterable[Cost], count: int | None = None) -> Cost:
    costs = list(costs)
    return Cost(count, sum(c.dense for c in costs), sum(c.pathway for c in costs))


# ---- the human table -----------------------------------------------------------------------------

def _si(x: float) -> str:
    """3 significant digits with an SI prefix (12.3G)."""
    e = 0
    while abs(x) >= 999.5 * 1000 ** e and e < 5:
        e += 1
    return f"{x / 1000 ** e:.3g}{' kMGTP'[e] if e else ''}"


def _ratio(c: Cost) -> str:
    return "–" if c.ratio is None else f"{c.ratio:.2f}x"


def _table(title: str, rows: Mapping[str, Cost], *, count: bool) -> list[str]:
    head = f"| {title} |{' count |' if count else ''} dense FLOPs | pathway FLOPs | dense/pathway | pathway MACs |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, c in rows.items():
        bold = "**" if name in ("training", "total", "update") else ""
        n = f" {'' if c.count is None else format(c.count, ',')} |" if count else ""
        lines.append(f"| {bold}{name}{bold} |{n} {_si(c.dense)} | {_si(c.pathway)} | {_ratio(c)} | "
                     f"{_si(c.pathway / MAC_FLOPS)} |")
    return lines


def format_flops(report: FlopReport) -> str:
    """A markdown table of the report, with its counting convention stated."""
    rp = report
    out = [f"FLOPs of {rp.run_dir} ({rp.pathway}, {rp.env}, checkpoint at step {rp.step:,}, "
           f"{rp.updates:,} updates of batch {rp.batch_size})",
           f"Convention: {rp.convention}. MACs = FLOPs / 2.", "",
           "| parameters | total | active | active weights | density |", "|---|---|---|---|---|"]
    for n, v in rp.params.items():
        out.append(f"| {n} | {v['total']:,} | {v['active']:,} | {v['active_weights']:,} | "
                   f"{v['active_weights'] / max(v['weights'], 1):.1%} |")
    out += ["(active = active weights + all biases; biases are never masked)", ""]
    out += _table("forward, per sample", rp.forward, count=False) + [""]
    out += _table(f"one update, B={rp.batch_size}", rp.per_update, count=False)
    out += ["(one update per environment step after the seed steps; final masks)", ""]
    out += _table("whole run", rp.run, count=True)
    per_step = rp.run["training"]
    out += ["", f"Training FLOPs per environment step (run average): dense {_si(per_step.dense / max(rp.step, 1))}, "
            f"pathway {_si(per_step.pathway / max(rp.step, 1))}; dense/pathway = {_ratio(per_step)} "
            f"(whole run incl. acting and evaluation: {_ratio(rp.run['total'])})."]
    out += [f"Note: {n}." for n in rp.notes]
    return "\n".join(out)
