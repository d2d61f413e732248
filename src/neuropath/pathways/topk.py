"""Exact top-k selection over a network's scores and their L1 normalisation."""

from __future__ import annotations

import torch

Scores = dict[str, torch.Tensor]


def l1_normalise(scores: Scores) -> Scores:
    """Divide every score by the sum of |score| over the whole network, so that scores from different
    batches are on one scale before they are averaged (signed scores, GraSP's, keep their signs)."""
    total = sum(float(s.abs().sum()) for s in scores.values())
    if total <= 0.0:
        return {k: s.clone() for k, s in scores.items()}
    return {k: s / total for k, s in scores.items()}


def keep_count(total: int, keep_ratio: float) -> int:
    """k = ⌊keep_ratio · N⌋, at least one weight."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep ratio must be in (0, 1], got {keep_ratio}")
    return max(1, int(keep_ratio * total))


SCOPES = ("global", "layer", "member")


def topk_masks(scores: Scores, keep_ratio: float, *, scope: str = "global",
               members: dict[str, str] | None = None) -> Scores:
    """Boolean masks keeping exactly k = ⌊keep_ratio·N⌋ of the highest scores.

    ``scope="global"`` ranks all layers together (the paper); ``"layer"`` keeps the same
    fraction in each layer; ``"member"`` ranks globally within each member of the network
    (``members`` maps a layer name to its member, e.g. the twin critic's ``q1`` / ``q2``), so
    that one member's larger scores cannot take the whole budget and disconnect another. Ties
    are broken by position (earlier layer, lower flat index wins), so the count is exact and
    the result deterministic -- the authors' ``score >= threshold`` could keep more than k.
    """
    if scope == "layer":
        return {name: topk_flat(s.flatten(), keep_count(s.numel(), keep_ratio)).view_as(s)
                for name, s in scores.items()}
    if scope == "member":
        groups: dict[str, list[str]] = {}
        for name in scores:
            groups.setdefault((members or {}).get(name, ""), []).append(name)
        out: Scores = {}
        for names in groups.values():
            out.update(topk_masks({n: scores[n] for n in names}, keep_ratio))
        return {name: out[name] for name in scores}
    if scope != "global":
        raise ValueError(f"unknown top-k scope {scope!r}; allowed: {', '.join(SCOPES)}")
    flat = torch.cat([s.flatten() for s in scores.values()])
    keep = topk_flat(flat, keep_count(flat.numel(), keep_ratio))
    out, offset = {}, 0
    for name, s in scores.items():
        out[name] = keep[offset:offset + s.numel()].view_as(s)
        offset += s.numel()
    return out


def topk_flat(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Exactly ``k`` entries: all those above the k-th largest value, then the earliest of
    those equal to it. NaN ranks last. ``topk`` + a tie fix-up is ~6x cheaper than a
    stable sort of the whole network (2 vs 13 ms for a 143k-weight critic)."""
    values = torch.nan_to_num(flat.float(), nan=-float("inf"))
    n = values.numel()
    keep = torch.zeros(n, dtype=torch.bool, device=flat.device)
    if k >= n:
        keep[:] = True
        return keep
    threshold = torch.topk(values, k, sorted=False).values.min()
    keep = values > threshold
    missing = k - int(keep.sum())
    if missing > 0:
        ties = torch.nonzero(values == threshold).flatten()[:missing]
        keep[ties] = True
    return keep


def task_topk_masks(scores: Scores, keep_ratio: float) -> Scores:
    """Per-task top-k of ``[tasks, ...]`` scores: task t keeps exactly ⌊keep_ratio·N⌋ of its own slices,
    ranked globally over the layers."""
    tasks = next(iter(scores.values())).shape[0]
    per_task = [topk_masks({n: s[t] for n, s in scores.items()}, keep_ratio) for t in range(tasks)]
    return {n: torch.stack([m[n] for m in per_task]) for n in scores}

