"""The one place a loop talks to its pathways: `PathwayDriver`.

The SAC, PPO and DQN loops did the same four things with their pathways in their own words: score the
initial masks on data of the untrained policy with the networks dense, decide after an update which
pathways are due for a new mask, score those (DAPD on recent data with the networks dense; SET, RigL and
RLx2 on a replay minibatch with the networks as they train), and let an evaluation's return freeze them,
logging every event and every freeze in ``pathway.jsonl``. A loop now hands the driver its data (closures
that draw a batch) and its losses; the driver holds the rules:

- which batches score a mask update: one per network (``--score-batches separate``) or the first one drawn
  for all (``shared``, the authors');
- where the networks are dense (`unmasked`) while scoring, and where not (a drop-grow method's own loss);
- every mask event as one ``pathway.jsonl`` line (step, network, event, entries changed, density, the
  density per layer, frozen), freezes with the inputs their pathway cuts off.

MT10 runs through it too: its pathways are `TaskPathway`s (every task's mask scored and installed at once,
the merge of the task copies as the freeze hook), whose events carry one density per task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..pathways import unmasked
from .config import Config

Losses = dict[str, Callable[[Any], Any]]


class PathwayDriver:
    """``pathways`` (name → `Pathway`) of ``algo``'s networks. ``logger()`` returns the run's current
    `RunLogger`; ``unmask`` is the module made dense while scoring (the whole algorithm, or DQN's Q-network
    without its target); ``on_freeze(name, cut)`` sees each freeze after it is logged (SAC warns where both
    Q networks are blind to an action)."""

    def __init__(self, cfg: Config, algo: nn.Module, pathways: dict[str, Any], logger: Callable[[], Any], *,
                 unmask: nn.Module | None = None,
                 on_freeze: Callable[[str, dict[str, list[int]]], None] | None = None) -> None:
        self.cfg, self.algo, self.pathways = cfg, algo, pathways
        self._logger = logger
        self.unmask = unmask if unmask is not None else algo
        self.on_freeze = on_freeze

    def __bool__(self) -> bool:
        return bool(self.pathways)

    def phase(self) -> str:
        """``dense`` without pathways, else their schedules' phase (``mixed`` where they differ)."""
        if not self.pathways:
            return "dense"
        phases = {pw.schedule.phase for pw in self.pathways.values()}
        return phases.pop() if len(phases) == 1 else "mixed"

    # ---- the three moments of a loop ---------------------------------------------------------------

    def init(self, step: int, sample: Callable[[], Any] | None, losses: Losses) -> None:
        """Initial masks. ``sample`` draws a scoring batch (None: the method needs no data, e.g. a random
        mask); the networks are scored dense."""
        draw = self.batches(sample) if sample is not None else None
        with unmasked(self.unmask):
            for name, pw in self.pathways.items():
                closure = (lambda n=name: losses[n](draw())) if draw is not None else None
                result = pw.init(closure)
                self.log(self.event(step, "init", name, result))
                if pw.frozen:
                    self.log_freeze(step, name)

    def due(self, step: int, *, episode_end: bool) -> list[str]:
        """The pathways due for a mask update after this step's update; a schedule that froze without one
        (its freeze step passed) is logged as frozen here."""
        out = []
        for name, pw in self.pathways.items():
            was_frozen = pw.frozen
            if pw.due(step, episode_end=episode_end):
                out.append(name)
            elif pw.frozen and not was_frozen:
                self.log_freeze(step, name)
        return out

    def update(self, step: int, due: list[str], *, recent: Callable[[], Any], losses: Callable[[], Losses],
               replay: Callable[[], Any] | None = None, replay_losses: Callable[[], Losses] | None = None,
               before: Callable[[str], None] | None = None,
               after: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        """New masks for the ``due`` pathways. DAPD-like methods score the dense networks with ``losses()``
        on ``recent()`` batches; drop-grow methods (``method.data == "replay"``) their own network as it
        trains with ``replay_losses()`` on ``replay()`` minibatches (the grow gradient is dense by
        construction). ``before(name)`` and ``after(name, event)`` let a loop measure what a swap does
        (SAC's swap probe) and add it to the event before it is logged. Losses are built only here: a loop
        calls this only when something is due."""
        draw = self.batches(recent)
        scoring: Losses | None = None
        training: Losses | None = None
        for name in due:
            pw = self.pathways[name]
            if before is not None:
                before(name)
            if getattr(pw.method, "data", "recent") == "replay":
                training = training if training is not None else (replay_losses or losses)()
                batch = replay if replay is not None else recent
                result = pw.update(step, lambda n=name, t=training: t[n](batch()))
            else:
                scoring = scoring if scoring is not None else losses()
                with unmasked(self.unmask):
                    result = pw.update(step, lambda n=name, s=scoring: s[n](draw()))
            event = self.event(step, "update", name, result)
            if after is not None:
                after(name, event)
            self.log(event)

    def observe(self, step: int, metric: float) -> None:
        """An evaluation's mean return to every pathway's schedule (DAPD may freeze on it)."""
        for name, pw in self.pathways.items():
            was_frozen = pw.frozen
            pw.observe(step, metric)
            if pw.frozen and not was_frozen:
                self.log_freeze(step, name)

    # ---- the rules ---------------------------------------------------------------------------------

    def batches(self, draw: Callable[[], Any]) -> Callable[[], Any]:
        """The scoring batches of one mask update: a new one for each network (``separate``), or the first
        one drawn for all of them (``shared``, the authors: one batch scores actor and critic)."""
        if self.cfg.pathway.score_batches == "separate":
            return draw
        drawn: list[Any] = []

        def shared() -> Any:
            if not drawn:
                drawn.append(draw())
            return drawn[0]
        return shared

    def event(self, step: int, kind: str, name: str, result) -> dict[str, Any]:
        pw = self.pathways[name]
        event = {"step": step, "net": name, "event": kind, "changed": result.changed,
                 "density": _rounded(result.density),
                 "layers": {k: _rounded(v) for k, v in pw.layer_density().items()}, "frozen": pw.frozen}
        if kind == "update" and pw.entry_ages is not None:
            event["young"] = pw.entry_ages.young()
        return event

    def log(self, event: dict[str, Any]) -> None:
        self._logger().pathway_event(event)

    def log_freeze(self, step: int, name: str) -> None:
        cut = self._logger().freeze(step, name, self.pathways[name])
        if self.on_freeze is not None:
            self.on_freeze(name, cut)


def _rounded(value: float | list[float]) -> float | list[float]:
    """A density (or, for a multi-task pathway, one per task) as ``pathway.jsonl`` stores it."""
    return [round(v, 6) for v in value] if isinstance(value, list) else round(value, 6)
