"""``neuropath overlap RUN_DIR``: which weights each score would choose, on the same network and data.

For every checkpoint a SAC run kept (``--keep-checkpoints``; a warm-up with checkpoints every few
thousand steps shows how the choice moves), the run's actor and critic are loaded with its replay
buffer; one batch of the ``--window`` most recent transitions is drawn, every score rates the dense
network on that batch (the loss DAPD uses: `SAC.losses`), and each score's top-k at the run's keep
ratio is compared with every other's and with the mask the run itself had installed:

    Jaccard(A, B) = |A ∧ B| / |A ∨ B|     (1 = the same pathway; two random 5% masks: ~0.026)

over the whole network and per layer. Nothing in the run directory is written.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import UsageError
from ..pathways import masked_layers, topk_masks, unmasked
from ..pathways.scores import SCORES, network_scores
from ..training import checkpoint
from ..training.run_dir import load_run_config

RUN_MASK = "run"
"""the label of the mask the run had installed at the checkpoint"""


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a ∧ b| / |a ∨ b| of two boolean masks (1.0 when both are empty)."""
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def random_jaccard(keep_ratio: float) -> float:
    """Expected Jaccard of two independent uniformly random masks of density p: p / (2 − p)."""
    return keep_ratio / (2.0 - keep_ratio)


@dataclass
class NetOverlap:
    """One network at one checkpoint: the masks' pairwise Jaccard, overall and per layer."""
    step: int
    net: str
    labels: list[str]
    overall: dict[tuple[str, str], float] = field(default_factory=dict)
    per_layer: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    since_previous: dict[str, float] = field(default_factory=dict)
    """each mask's Jaccard with the same score's mask at the previous kept checkpoint (how much it moved)"""


def masks_by_score(net: torch.nn.Module, loss, scores: list[str], keep_ratio: float,
                   synflow_rounds: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Top-k masks each score chooses for ``net`` (the same loss closure, so the same batch, for all)."""
    out = {}
    for score in scores:
        s = network_scores(score, net, loss, keep_ratio=keep_ratio, synflow_rounds=synflow_rounds,
                           generator=torch.Generator().manual_seed(seed))
        out[score] = topk_masks(s, keep_ratio)
    return out


def _flat(masks: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([m.flatten() for m in masks.values()])


def compare(step: int, net: str, masks: dict[str, dict[str, torch.Tensor]],
            previous: dict[str, dict[str, torch.Tensor]] | None = None) -> NetOverlap:
    result = NetOverlap(step, net, list(masks))
    flat = {label: _flat(m) for label, m in masks.items()}          # once per mask, not once per pair
    for a, b in itertools.combinations(masks, 2):
        result.per_layer[a, b] = {n: jaccard(masks[a][n], masks[b][n]) for n in masks[a]}
        result.overall[a, b] = jaccard(flat[a], flat[b])
    for label in masks:
        if previous and label in previous:
            result.since_previous[label] = jaccard(flat[label], _flat(previous[label]))
    return result


def checkpoints_of(run_dir: Path) -> list[Path]:
    """Every complete checkpoint the run kept, oldest first."""
    checkpoint.latest(run_dir)                          # a clear error if there is none at all
    root = checkpoint.checkpoint_root(run_dir)
    return sorted(p for p in root.glob("ckpt-*") if (p / "state.pt").is_file() and (p / "meta.json").is_file())


def score_overlap(run_dir: str | Path, scores: list[str] | None = None, *, seed: int = 0) -> list[NetOverlap]:
    """Pairwise Jaccard of the masks every score chooses at every kept checkpoint of a SAC run."""
    from ..algos.sac import SAC
    from ..data.replay import ReplayBuffer

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cfg.run.algo not in ("sac", "auto") or cfg.run.benchmark is not None or cfg.offline.dataset is not None:
        raise UsageError(f"{str(run_dir)!r} is not a single-task SAC run: `neuropath overlap` compares scores on "
                         "SAC runs so far")
    scores = list(scores or SCORES)
    unknown = [s for s in scores if s not in SCORES]
    if unknown:
        raise UsageError(f"unknown score {unknown[0]!r}; known: {', '.join(SCORES)}")
    p = cfg.pathway
    out: list[NetOverlap] = []
    previous: dict[str, dict] = {}
    for ckpt in checkpoints_of(run_dir):
        meta, state = checkpoint.read_meta(ckpt), checkpoint.load_state(ckpt)
        try:
            algo = SAC(int(meta["obs_dim"]), int(meta["act_dim"]), cfg.sac)
            buffer = ReplayBuffer(algo.obs_dim, algo.act_dim, int(state["replay"]["size"]) or 1)
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"checkpoint {str(ckpt)!r} does not hold a SAC agent with its replay") from None
        checkpoint.restore(ckpt, state, {"algo": algo}, also=lambda: buffer.load(ckpt / "replay.npy", state["replay"]))
        if len(buffer) == 0:
            continue
        torch.manual_seed(seed)
        batch = buffer.sample_recent(p.score_batch, p.window)
        losses = algo.losses()
        step = int(meta["step"])
        for name, net in algo.networks.items():
            installed = {n: m.mask[0].clone() for n, m in masked_layers(net).items()}
            used = any(m.use_mask for m in masked_layers(net).values())
            with unmasked(algo):
                masks = masks_by_score(net, lambda n=name: losses[n](batch), scores, cfg.keep_ratio_of(name),
                                       p.synflow_rounds, seed)
            if used:
                masks[RUN_MASK] = installed
            out.append(compare(step, name, masks, previous.get(name)))
            previous[name] = masks
    if not out:
        raise UsageError(f"{str(run_dir)!r} has no checkpoint with replay data to score")
    return out


def format_overlap(results: list[NetOverlap], keep_ratio: float) -> str:
    """Per checkpoint and network: the overall Jaccard matrix, then the per-layer Jaccard against snip."""
    lines = [f"Jaccard |A∧B| / |A∨B| of the top-k masks (two random masks at keep {keep_ratio:g}: "
             f"{random_jaccard(keep_ratio):.3f})"]
    for r in results:
        lines += ["", f"## step {r.step}, {r.net}", "| | " + " | ".join(r.labels) + " |",
                  "|---" * (len(r.labels) + 1) + "|"]
        for a in r.labels:
            cells = ["1" if a == b else f"{r.overall.get((a, b), r.overall.get((b, a))):.3f}" for b in r.labels]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        if r.since_previous:
            lines.append("vs the same score at the previous checkpoint: " +
                         ", ".join(f"{k} {v:.3f}" for k, v in r.since_previous.items()))
        if "snip" in r.labels:
            for other in r.labels:
                if other == "snip":
                    continue
                layers = r.per_layer.get(("snip", other)) or r.per_layer.get((other, "snip"))
                lines.append(f"snip vs {other} per layer: " + ", ".join(f"{n} {v:.3f}" for n, v in layers.items()))
    return "\n".join(lines)


def overlap_rows(results: list[NetOverlap]) -> list[dict]:
    """Flat rows (step, net, a, b, layer or 'all', jaccard) for ``--csv``."""
    rows = []
    for r in results:
        for (a, b), v in r.overall.items():
            rows.append({"step": r.step, "net": r.net, "a": a, "b": b, "layer": "all", "jaccard": round(v, 6)})
            for layer, x in r.per_layer[a, b].items():
                rows.append({"step": r.step, "net": r.net, "a": a, "b": b, "layer": layer, "jaccard": round(x, 6)})
        for label, v in r.since_previous.items():
            rows.append({"step": r.step, "net": r.net, "a": label, "b": f"{label}@previous", "layer": "all",
                         "jaccard": round(v, 6)})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    import csv
    if path.exists():
        raise UsageError(f"{str(path)!r} exists; refusing to overwrite it")
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


__all__ = ["NetOverlap", "RUN_MASK", "compare", "format_overlap", "jaccard", "masks_by_score", "overlap_rows",
           "random_jaccard", "score_overlap", "write_csv"]
