"""The skeleton every training loop shares: `Run`.

A run is a directory with a lock, ``config.yaml``, logs, checkpoints. What happens to them is the same
for SAC, PPO, DQN, MT10 and offline runs, so it is written once here, and a loop only says what is its
own: how to build itself, how to take one step (`advance`), what an evaluation measures (`evaluation`),
and the state beyond the common one that its checkpoints must hold. `Run` owns

- the run directory, its seeds and device (`start_run`), ``config.yaml`` (rewritten at every start, so a
  resumed run records its new budget), the logs cut back to the checkpoint on resume (`truncate_after`)
  and a finished evaluation row put back where a crash cut it from ``metrics.csv``;
- the logger (the loop's ``metrics.csv`` columns), the energy meter and the CPU seconds and joules summed
  over every session of the run;
- the cadence: evaluation rows (with wall time and energy, handed to ``on_eval``), checkpoints by step
  and by wall time, the budget's last row and checkpoint, Ctrl-C (and ``on_eval`` returning False, and a
  per-step ``callback`` returning False) ending checkpointed;
- one save and restore of the algorithm, its optimisers, pathways, counters and every RNG (CUDA included),
  with hooks for the loop's own state.

Why a base class and not a runner that holds a loop: the loops' public objects (`Trainer`, `PPOTrainer`,
...) are what users and tests hold, with their attributes (``trainer.algo``, ``trainer.step``); one
object keeps those as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .._version import __version__
from ..engine.energy import EnergyMeter
from ..errors import RunFault
from . import checkpoint, run_lock
from .config import Config
from .guards import CheckpointClock, check_finite_weights, last_good
from .logging import EVAL_FIELDS, RunLogger, truncate_after
from .loop_common import resume_trainer, rng_state, set_rng_state, write_config
from .run_dir import resolve_device, start_run

StepCallback = Callable[[int, dict[str, Any]], bool]
EvalCallback = Callable[[dict[str, Any]], "bool | None"]


class Run:
    """A training run's skeleton; see the module docstring. Subclasses set ``algo``, ``optimizers``,
    ``pathways`` (name → `Pathway`, may be empty) and ``rng`` (a numpy generator or None) in their
    ``__init__`` after `Run.__init__`, and implement `advance` and `evaluation`."""

    fields: list[str] = EVAL_FIELDS        # metrics.csv columns
    score_column = "return_mean"           # what ``last_eval`` and the progress bar show
    logs_episodes = True                   # training episodes go to episodes.csv
    kind_name = "sac"                      # ``meta["algo"]`` of its checkpoints
    density_labels = {"actor_density": "actor", "critic_density": "critic"}    # `result_line`'s densities

    def __init__(self, cfg: Config, resume_from: Path | None) -> None:
        self.cfg = cfg
        self.run_dir = start_run(cfg, resume_from)
        self.device = resolve_device(cfg.run.device)
        self.algo: nn.Module
        self.optimizers: dict[str, Any] = {}
        self.pathways: dict[str, Any] = {}
        self.rng: np.random.Generator | None = None
        self.step = 0
        self.initialised = False
        self.last_eval: float | None = None
        self._last_eval_row: dict[str, Any] = {}
        self._logged_step: int | None = None        # the last row metrics.csv holds
        self.next_checkpoint = cfg.run.checkpoint_every
        self.clock = CheckpointClock(cfg.run.checkpoint_minutes)
        self._saved_step = -1
        # CPU seconds and measured joules of earlier sessions of this run (a resume adds to them)
        self._spent: dict[str, float | None] = {"cpu_seconds": 0.0, "energy_j": None}
        self._spent_before = dict(self._spent)
        self.meter: EnergyMeter | None = None
        self.logger: RunLogger | None = None
        self.on_eval: EvalCallback | None = None
        self._stop = False
        self._sps_clock = (time.perf_counter(), 0)

    @classmethod
    def resume(cls, run_dir: str | Path, *, steps: int | None = None, threads: int | None = None,
               progress: bool | None = None, device: str | None = None):
        """Rebuild the run from its ``config.yaml`` (a new step budget, threads, progress bar or device
        allowed) and load its latest checkpoint."""
        return resume_trainer(cls, run_dir, steps=steps, threads=threads, progress=progress, device=device)

    # ---- what a loop provides -------------------------------------------------------------------

    def begin(self) -> None:
        """Before the first `advance` of a session: initial masks, the first reset."""

    def advance(self) -> dict[str, Any] | None:
        """One unit of training (an environment step, a rollout, an update); evaluates and checkpoints
        when due (`evaluate`, `checkpoint_due`). Returns what the per-step callback is shown (SAC: whether
        an episode ended)."""
        raise NotImplementedError

    def evaluation(self) -> dict[str, Any]:
        """The loop's columns of an evaluation row (returns or successes, phase, densities)."""
        raise NotImplementedError

    def after_evaluation(self, row: dict[str, Any]) -> None:
        """After the row is logged: the pathways observe it (DAPD may freeze on it)."""

    def before_logging(self, row: dict[str, Any]) -> None:
        """Before the row is logged (SAC: the policy snapshot of this evaluation)."""

    def phase(self) -> str:
        return "dense"

    def result_line(self, row: dict[str, Any]) -> str:
        """The last evaluation in one line, as ``neuropath train`` prints it at the end."""
        densities = ", ".join(f"{label} density {row[col]:.3f}" for col, label in self.density_labels.items())
        return (f"step {row['step']}: eval return {row['return_mean']:.1f} ± {row['return_std']:.1f} "
                f"({self.phase()}, {densities})")

    def postfix(self) -> dict[str, str]:
        """The progress bar's text."""
        shown = "-" if self.last_eval is None else f"{self.last_eval:.{2 if self.score_column == 'success_mean' else 0}f}"
        return {"eval": shown, "phase": self.phase()}

    def can_checkpoint(self) -> bool:
        """Whether an interrupted session has anything to keep."""
        return self.step > 0

    def sync(self) -> None:
        """Make the torch state whole before it is read (SAC's fused update skips entries)."""

    def meta(self) -> dict[str, Any]:
        """What a checkpoint says about its run without loading it (sizes, environment)."""
        return {}

    def extra_counters(self) -> dict[str, Any]:
        return {}

    def load_counters(self, counters: dict[str, Any]) -> None:
        """The loop's own counters back from a checkpoint (the common ones are read already)."""

    def extra_state(self) -> dict[str, Any]:
        """Sections of the checkpoint beyond algo, optimisers, pathways, counters, rng."""
        return {}

    def extra_modules(self) -> dict[str, Any]:
        """Checkpoint sections restored by ``load_state_dict`` besides algo, optimisers and pathways."""
        return {}

    def extra_rng(self) -> dict[str, Any]:
        """Random streams beyond python, numpy, torch, CUDA and ``self.rng`` (an environment's, a generator)."""
        return {}

    def load_extra(self, state: dict[str, Any], path: Path) -> None:
        """The loop's own state back from a checkpoint (its RNGs included), after the common state."""

    def checkpointed_replay(self) -> Any | None:
        """The replay buffer a checkpoint stores beside the state (None: none)."""
        return None

    def load_replay(self, path: Path, state: dict[str, Any]) -> None:
        self.checkpointed_replay().load(path / "replay.npy")

    def check_checkpoint(self, path: Path) -> None:
        """Refuse (`UsageError`) a checkpoint that cannot be this run's before anything is loaded."""

    def checkpointed_pathways(self) -> dict[str, Any]:
        return self.pathways

    # ---- the run --------------------------------------------------------------------------------

    @run_lock.locked
    def train(self, callback: StepCallback | None = None, *, on_eval: EvalCallback | None = None) -> dict[str, Any]:
        """Train to ``cfg.run.steps`` and return the last evaluation row. ``callback(step, info)`` after
        every `advance` and ``on_eval(row)`` after every evaluation may return False to stop early; the
        run then ends on an evaluation and a checkpoint, and `resume` continues it. Ctrl-C checkpoints
        what was done and re-raises."""
        r = self.cfg.run
        self.on_eval, self._stop = on_eval, False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.cfg, self.run_dir)
        rows = truncate_after(self.run_dir, self.step, self.fields)
        self._logged_step = int(rows[-1]["step"]) if rows else None
        self.logger = RunLogger(self.run_dir, start_step=self.step, total_steps=r.steps, progress=r.progress,
                                hparams=self.cfg.to_dict(), fields=self.fields, episodes=self.logs_episodes)
        self._restore_last_row(rows)
        self.meter = EnergyMeter(self.device).start()
        self._spent_before = dict(self._spent)
        try:
            self.begin()
            self._sps_clock = (time.perf_counter(), self.step)
            while self.step < r.steps and not self._stop:
                info = self.advance() or {}
                if callback is not None and callback(self.step, info) is False:
                    break
            if self._last_eval_row.get("step") != self.step and self._logged_step != self.step:
                self.evaluate()               # stopped early, or cut in the budget's last evaluation
            if self._saved_step != self.step:
                self.save_checkpoint()
            self.logger.progress(self.step, self.postfix())
            return self._last_eval_row
        except KeyboardInterrupt:
            # Ctrl-C: keep what was done; `--resume` continues (a new episode where one was cut)
            if self.can_checkpoint() and self._saved_step != self.step:
                self.save_checkpoint()
            raise
        finally:
            self.logger.close()
            self.logger = None

    def checkpoint_due(self) -> bool:
        """A checkpoint by step count (``--checkpoint-every``) or by wall time (``--checkpoint-minutes``)."""
        return self.step >= self.next_checkpoint or self.clock.due()

    def steps_per_second(self) -> float:
        """Steps per second since the last call (or the session's start): the ``charts/SPS`` scalar."""
        now = time.perf_counter()
        sps = (self.step - self._sps_clock[1]) / max(now - self._sps_clock[0], 1e-9)
        self._sps_clock = (now, self.step)
        return sps

    def stop_requested(self) -> bool:
        """``on_eval`` asked to stop: a loop that checks this mid-unit may end the unit early."""
        return self._stop

    # ---- evaluation -----------------------------------------------------------------------------

    def evaluation_sides(self) -> tuple[bool, bool]:
        """Whether this step evaluates before its mask update and whether after it: an evaluation is due every
        ``--eval-every`` steps and at the last; ``--boundary-order`` says on which side (eval-first: the
        evaluation and the freeze test see the mask that trained, as the authors order them)."""
        r = self.cfg.run
        due = self.step % r.eval_every == 0 or self.step == r.steps
        first = self.cfg.pathway.boundary_order == "eval-first"
        return due and first, due and not first

    def evaluate(self) -> dict[str, Any]:
        """One evaluation row: the loop's columns, wall time, CPU seconds and joules so far; logged, shown to
        the pathways and to ``on_eval``."""
        row = {"step": self.step, **self.evaluation(), "wall_time": round(time.time(), 3),
               **self._energy_columns()}
        self.last_eval = row[self.score_column]
        self._last_eval_row = row
        self.before_logging(row)
        self.logger.evaluation(row)
        self._logged_step = self.step
        self.after_evaluation(row)
        self.logger.progress(self.step, self.postfix())
        if self.on_eval is not None and self.on_eval(row) is False:
            self._stop = True
        return row

    def _update_spent(self) -> None:
        if self.meter is None:
            return
        before = self._spent_before
        self._spent["cpu_seconds"] = before["cpu_seconds"] + self.meter.cpu_seconds()
        joules = self.meter.joules()
        if joules is not None:
            self._spent["energy_j"] = (before["energy_j"] or 0.0) + joules

    def _energy_columns(self) -> dict[str, Any]:
        """Cumulative CPU seconds and (where measured) joules of the run, across resumes."""
        if self.meter is None:
            return {}
        self._update_spent()
        return {"cpu_seconds": round(self._spent["cpu_seconds"], 2),
                "energy_j": "" if self._spent["energy_j"] is None else round(self._spent["energy_j"], 1),
                "energy_mode": self.meter.mode}

    def _restore_last_row(self, rows: list[dict[str, str]]) -> None:
        """Put back the checkpoint's last evaluation row where ``metrics.csv`` (its kept ``rows``) lost it (a
        crash cut it while it was written, and `read_csv` leaves a cut row out): the checkpoint holds the row,
        so nothing finished is lost."""
        row = self._last_eval_row
        if not row or not self.step:
            return
        if not rows or int(rows[-1]["step"]) < int(row["step"]):
            self.logger.evaluation(row)
            self._logged_step = int(row["step"])
            self.logger.warn(f"neuropath: metrics.csv had lost its row of step {row['step']} (cut mid-write); "
                             "restored from the checkpoint")

    # ---- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        self.sync()
        self._update_spent()
        return {"algo": self.algo.state_dict(), "algo_updates": self.algo.updates,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "pathways": {k: p.state_dict() for k, p in self.checkpointed_pathways().items()},
                "counters": {"step": self.step, "initialised": self.initialised, "last_eval": self.last_eval,
                             "last_eval_row": self._last_eval_row, "next_checkpoint": self.next_checkpoint,
                             "spent": dict(self._spent), **self.extra_counters()},
                "rng": {**rng_state(self.rng), **self.extra_rng()},
                **self.extra_state()}

    def save_checkpoint(self) -> Path:
        """A checkpoint of the whole state (never of non-finite weights: a `RunFault` instead, ``latest``
        left on the last good one); the log rows up to this step reach the disk first, so a kill right
        after loses none of them."""
        r = self.cfg.run
        self.sync()
        check_finite_weights(self.algo, self.step, self.run_dir)
        if self.logger is not None:
            self.logger.flush()
        self.clock.reset()
        while self.next_checkpoint <= self.step:
            self.next_checkpoint += r.checkpoint_every
        meta = {"neuropath": __version__, "algo": self.kind_name, "pathway": self.cfg.pathway.pathway, **self.meta()}
        path = checkpoint.save(self.run_dir, self.step, self.state_dict(), replay=self.checkpointed_replay(), meta=meta,
                               keep=r.keep_checkpoints)
        self._saved_step = self.step
        return path

    def load_checkpoint(self, path: Path) -> None:
        self.check_checkpoint(path)
        state = checkpoint.load_state(path, map_location=self.device)
        parts = {"algo": self.algo, "optimizers": self.optimizers, "pathways": self.checkpointed_pathways(),
                 **self.extra_modules()}
        checkpoint.restore(path, state, parts,
                           also=(lambda: self.load_replay(path, state)) if self.checkpointed_replay() is not None else None)
        self.algo.updates = state["algo_updates"]
        c = state["counters"]
        self.step = c["step"]
        self.initialised = c.get("initialised", True)
        self.last_eval = c.get("last_eval")
        self._last_eval_row = c.get("last_eval_row") or {}
        every = self.cfg.run.checkpoint_every
        self.next_checkpoint = c.get("next_checkpoint") or (self.step // every + 1) * every
        # checkpoints before the skeleton kept only the CPU seconds of PPO, DQN, MT10 and offline runs
        self._spent = dict(c.get("spent") or {"cpu_seconds": c.get("cpu_seconds", 0.0), "energy_j": None})
        self._saved_step = self.step
        set_rng_state(state["rng"], self.rng)
        self.load_counters(c)
        self.load_extra(state, path)

    def disk_full(self, path: Path) -> RunFault:
        """The one-line fault of a file the disk had no room for."""
        return RunFault(f"the disk is full: {path} could not be written; {last_good(self.run_dir)}")


class EpisodicRun(Run):
    """A `Run` that steps one environment episode by episode (SAC, DQN): the episode counters, and what
    an episode's end does before the environment resets."""

    def __init__(self, cfg: Config, resume_from: Path | None) -> None:
        super().__init__(cfg, resume_from)
        self.episodes = 0
        self.ep_return, self.ep_len = 0.0, 0

    def end_episode(self) -> None:
        """Log the episode and count it; checkpoint when one is due, at the budget, or where ``on_eval``
        asked to stop: before the reset, so that a resume replays that reset exactly."""
        self.logger.episode(self.step, self.ep_return, self.ep_len)
        self.episodes += 1
        if self.checkpoint_due() or self.step >= self.cfg.run.steps or self.stop_requested():
            self.save_checkpoint()

    def extra_counters(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "ep_return": self.ep_return, "ep_len": self.ep_len}

    def load_counters(self, counters: dict[str, Any]) -> None:
        self.episodes = counters["episodes"]
