"""The masks a run held over time, rebuilt from its ``pathway.jsonl``, to price each pass at its own time.

Every mask event logs each layer's density (6 decimals: exact for layers under ~10⁶ weights), so the
number of active weights per layer after each event is known without the masks themselves. A FLOP count
keeps the row-passes that ran on the mask (`counter.Macs.at`), so one counted update or action is priced at
any of those mask states. A DAPD warm-up changes which weights are active, hence how they split over the
layers, which changes a pass's cost where layers differ in rows (convolutions) or in which passes they run
(the first layer has no input gradient); a loop whose first masks come after dense work (PPO's first
rollout) is charged that work dense.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ..pathways.masks import masked_layers
from .counter import Counts, MaskState, layer_weights, pathway_flops

Timeline = list[tuple[float, MaskState]]
"""[(time, masks)]: the masks in effect for work after ``time`` (until the next entry)"""


def nnz(net: nn.Module) -> dict[str, int]:
    """Active weights per masked layer, as the masks stand."""
    return {name: layer_weights(m)[1] for name, m in masked_layers(net).items()}


def dense_masks(net: nn.Module) -> dict[str, int]:
    """Every weight of every masked layer active (a network before its first mask)."""
    return {name: m.weight.numel() for name, m in masked_layers(net).items()}


def mask_timeline(events: list[dict[str, Any]], nets: Mapping[str, nn.Module], notes: list[str], *,
                  tied: Mapping[str, str] | None = None, start: MaskState | None = None,
                  time: Callable[[dict[str, Any]], float] = lambda e: float(e["step"])) -> Timeline:
    """The mask states of ``nets`` (name → network as it stands at the checkpoint) from their ``init`` and
    ``update`` events; ``tied`` maps a network to the one that follows its masks (the target critic), ``start``
    is what holds before the first event (default: the first logged masks), ``time(event)`` where an event
    falls among the loop's work (default: its step, after that step's update). Without usable densities, or
    where the last logged masks are not the checkpoint's, a note says so and every pass is priced at the
    final masks."""
    tied = dict(tied or {})
    final = {n: nnz(net) for n, net in nets.items()}
    for src, dst in tied.items():
        final.setdefault(dst, final[src])
    mask_events = [e for e in events if e.get("event") in ("init", "update") and e.get("net") in nets]
    if not mask_events:
        return [(float("-inf"), final)]
    numel = {n: {k: m.weight.numel() for k, m in masked_layers(net).items()} for n, net in nets.items()}
    out: Timeline = [(float("-inf"), dict(start))] if start is not None else []
    current = dict(start or final)
    try:
        for e in sorted(mask_events, key=time):               # stable: the log's order within a step
            layers = e["layers"]
            if set(layers) != set(numel[e["net"]]):
                raise KeyError
            active = {n: round(float(layers[n]) * w) for n, w in numel[e["net"]].items()}
            current[e["net"]] = active
            if e["net"] in tied:
                current[tied[e["net"]]] = active
            at = time(e)
            if out and out[-1][0] == at:
                out[-1] = (at, dict(current))
            else:
                out.append((at, dict(current)))
    except (KeyError, TypeError, ValueError):
        notes.append("pathway.jsonl lacks per-layer densities: every pass is charged at the final masks")
        return [(float("-inf"), final)]
    if any(out[-1][1][n] != final[n] for n in nets):
        notes.append("the last logged masks differ from the checkpoint's: every pass is charged at the final masks")
        return [(float("-inf"), final)]
    if start is None:                                         # before the first event: the first masks
        out[0] = (float("-inf"), out[0][1])
    return out


def masks_at(timeline: Timeline, time: float) -> MaskState:
    """The masks in effect for work at ``time`` (every entry before it applied)."""
    masks = timeline[0][1]
    for at, m in timeline:
        if at >= time:
            break
        masks = m
    return masks


def segments(timeline: Timeline, end: float) -> list[tuple[float, float, MaskState]]:
    """``(lo, hi, masks)``: work at times in (lo, hi] ran at ``masks``; the first ``lo`` is 0, the last ``hi``
    ``end``."""
    out = []
    for i, (at, masks) in enumerate(timeline):
        lo = max(at, 0.0)
        hi = min(timeline[i + 1][0], end) if i + 1 < len(timeline) else end
        if hi > lo:
            out.append((lo, hi, masks))
    return out


def priced(timeline: Timeline, end: float, counts: Counts, units_in: Callable[[float, float], int]) -> tuple[int, int]:
    """``(units, pathway FLOPs)`` of work that cost ``counts`` per unit, ``units_in(lo, hi)`` units falling
    in each segment of the timeline up to ``end``, each priced at its segment's masks."""
    units = flops = 0
    for lo, hi, masks in segments(timeline, end):
        n = units_in(lo, hi)
        units += n
        flops += n * pathway_flops(counts, masks)
    return units, flops


def multiples(lo: float, hi: float, k: int, offset: float = 0.0) -> int:
    """How many times ``j·k + offset`` (j ≥ 1) lie in (lo, hi]."""
    def upto(x: float) -> int:
        return max(0, int((x - offset) // k))
    return max(0, upto(hi) - upto(lo))
