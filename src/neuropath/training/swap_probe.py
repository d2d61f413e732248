"""What a mask swap does to the functions the SAC networks compute, measured on a fixed batch.

At each warm-up mask update the probe takes a batch of recent states (evenly spaced over the scoring
window, no randomness drawn) and records the actor's deterministic actions tanh(μ(s)) and the twin
critic's Q(s, a) on the stored actions, just before the swap. Right after the swap it measures the
change, and again ``later`` steps on, when training has had time to adapt the new pathway:
``shift`` = mean |output − output before the swap| / mean |output before the swap|. A swap that moves
the policy by a fifth and the critic by a quarter, as one at 16k steps on HalfCheetah did, is a
different network for the evaluation that follows it; whether ``later`` brings it back is what tells
an entry rule that lets new weights settle from one that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..algos.common import Batch
from ..algos.sac import SAC


@dataclass
class _Pending:
    step: int
    obs: torch.Tensor
    action: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor
    swaps_since: int = 0


def _shift(now: torch.Tensor, ref: torch.Tensor) -> float:
    return float((now - ref).abs().mean() / ref.abs().mean().clamp_min(1e-12))


class SwapProbe:
    """Per network (``actor``, ``critic``): its output change at a swap and ``later`` steps after it."""

    def __init__(self, algo: SAC, later: int = 1000, rows: int = 256) -> None:
        self.algo, self.later, self.rows = algo, later, rows
        self.pending: dict[str, _Pending] = {}
        self._held: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def _outputs(self, name: str, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if name == "actor":
            return torch.tanh(self.algo.actor(obs)[0])
        return torch.cat(self.algo.critic(obs, action), dim=-1)

    def before(self, name: str, batch: Batch) -> None:
        """Record ``name``'s outputs on ``batch`` (take it with `ReplayBuffer.recent_spread`) before a swap."""
        obs, action = batch.obs[:self.rows], batch.action[:self.rows]
        self._held[name] = (obs, action, self._outputs(name, obs, action))

    def after(self, name: str, step: int) -> float | None:
        """The relative change of ``name``'s outputs caused by the swap just made. Its later check is
        scheduled unless one of an earlier swap is still pending (Hopper swaps every few dozen steps
        early on): the later event then counts the swaps made in between."""
        if name not in self._held:
            return None
        obs, action, before = self._held.pop(name)
        after = self._outputs(name, obs, action)
        if name in self.pending:
            self.pending[name].swaps_since += 1
        else:
            self.pending[name] = _Pending(step, obs, action, before, after)
        return _shift(after, before)

    def due(self, step: int) -> list[dict]:
        """Events of the swaps made ``later`` steps ago: ``shift`` against the outputs before the swap,
        ``drift`` against those right after it (how far training moved the new pathway)."""
        out = []
        for name, p in list(self.pending.items()):
            if step - p.step >= self.later:
                now = self._outputs(name, p.obs, p.action)
                out.append({"step": step, "net": name, "event": "swap-later", "swap_step": p.step,
                            "shift": round(_shift(now, p.before), 6), "drift": round(_shift(now, p.after), 6),
                            "swaps_since": p.swaps_since})
                del self.pending[name]
        return out

    def state_dict(self) -> dict:
        return {name: vars(p) for name, p in self.pending.items()}

    def load_state_dict(self, state: dict) -> None:
        self.pending = {name: _Pending(**p) for name, p in state.items()}
