"""*When* a pathway's mask changes. A schedule knows nothing of scores or networks.

`WarmupFreeze` is the DAPD schedule: update the mask at every episode end (or every N
steps) during warm-up; freeze it for good once the evaluation return passes a threshold
or, as our second trigger, at a given step -- and remember when and why.
"""

from __future__ import annotations

from typing import Protocol


class MaskSchedule(Protocol):
    frozen: bool
    frozen_at: int | None
    freeze_reason: str | None

    def due(self, step: int, *, episode_end: bool = False) -> bool: ...
    def observe(self, step: int, metric: float) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class _Base:
    """Frozen-state bookkeeping shared by all schedules."""

    def __init__(self) -> None:
        self.frozen = False
        self.frozen_at: int | None = None
        self.freeze_reason: str | None = None

    def freeze(self, step: int, reason: str) -> None:
        if not self.frozen:
            self.frozen, self.frozen_at, self.freeze_reason = True, step, reason

    def observe(self, step: int, metric: float) -> None:
        pass

    @property
    def phase(self) -> str:
        return "frozen" if self.frozen else "warm-up"

    def state_dict(self) -> dict:
        return {"frozen": self.frozen, "frozen_at": self.frozen_at, "freeze_reason": self.freeze_reason}

    def load_state_dict(self, state: dict) -> None:
        self.frozen = bool(state["frozen"])
        self.frozen_at = state["frozen_at"]
        self.freeze_reason = state["freeze_reason"]


class WarmupFreeze(_Base):
    """DAPD: warm-up mask updates, then a fixed pathway.

    Args:
        every: update at each episode end (``None``, the authors' choice) or every
            ``every`` steps.
        freeze_return: freeze once an evaluation's mean return is strictly above this.
        freeze_step: freeze at this step whatever the return (ours; ``None`` = never).
    """

    def __init__(self, every: int | None = None, freeze_return: float | None = None,
                 freeze_step: int | None = None) -> None:
        super().__init__()
        if every is not None and every < 1:
            raise ValueError(f"mask update interval must be >= 1 step, got {every}")
        self.every, self.freeze_return, self.freeze_step = every, freeze_return, freeze_step

    def due(self, step: int, *, episode_end: bool = False) -> bool:
        if self.freeze_step is not None and step >= self.freeze_step:
            self.freeze(self.freeze_step, f"reached freeze step {self.freeze_step}")
        if self.frozen:
            return False
        return episode_end if self.every is None else step % self.every == 0

    def observe(self, step: int, metric: float) -> None:
        if self.freeze_return is not None and metric > self.freeze_return:
            self.freeze(step, f"eval return {metric:.1f} > threshold {self.freeze_return:g}")


class SuccessFreeze(WarmupFreeze):
    """`WarmupFreeze` on a success rate (multi-task): freeze once an evaluation's mean success reaches
    ``freeze_success`` (at least, not above: a rate of 1.0 must be able to freeze)."""

    def __init__(self, every: int | None = None, freeze_success: float | None = None,
                 freeze_step: int | None = None) -> None:
        super().__init__(every, freeze_success, freeze_step)

    def observe(self, step: int, metric: float) -> None:
        if self.freeze_return is not None and metric >= self.freeze_return:
            self.freeze(step, f"mean success {metric:.2f} >= {self.freeze_return:g}")


class Never(_Base):
    """A mask chosen once at the start (static SNIP, random) and never changed."""

    def __init__(self, reason: str = "static mask") -> None:
        super().__init__()
        self.freeze(0, reason)

    @property
    def phase(self) -> str:
        return "static"

    def due(self, step: int, *, episode_end: bool = False) -> bool:
        return False


class Periodic(_Base):
    """Every ``every`` steps from ``start`` until ``end`` (dynamic sparse training)."""

    def __init__(self, every: int, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"update interval must be >= 1 step, got {every}")
        self.every, self.start, self.end = every, start, end

    @property
    def phase(self) -> str:
        return "fixed" if self.frozen else "dynamic"

    def due(self, step: int, *, episode_end: bool = False) -> bool:
        if self.end is not None and step >= self.end:
            self.freeze(self.end, f"reached end step {self.end}")
        return not self.frozen and step >= self.start and step % self.every == 0
