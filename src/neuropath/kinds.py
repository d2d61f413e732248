"""What kind of run a config describes, decided in one place.

A run is one of six kinds: online SAC on one environment, PPO, DQN, multi-task SAC on MT10, offline RL on
one dataset (IQL or BCQ), offline RL on MT10's datasets. Which one used to be worked out again by the CLI
(twice), `load_policy`, the FLOP counter and the exporter, each with its own chain of ``if``s; they now ask
`kind_of`, and each kind names its trainer, its policy loader, its FLOP counter and whether it exports.

The entries are ``"module:attribute"`` references, imported only when used: this module sits at the top of
the package (it names trainers in ``training/``, counters and the exporter in ``efficiency/``), must import
none of them to be imported cheaply by the CLI, and must not pull MuJoCo into a ``--help``.

To add an algorithm: write its loop (a trainer class with ``__init__(cfg)``, ``resume(run_dir, **kept)``,
``train()``, ``result_line(row)``) and add its kind here (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class RunKind:
    name: str
    describe: str                      # in words, for messages: "a multi-task (MT10) run"; {algo} filled in
    trainer: str                       # "module:Class" of its trainer
    policy: str | None = None          # "module:callable(run_dir) -> policy with SB3's predict"
    flops: str | None = None           # "module:callable(run_dir) -> (report, text, training FLOPs on the pathway)"
    exports: bool = False              # `neuropath export` supports its policy
    exported_network: str = "actor"    # the network whose keep ratio an export reports
    instead: dict[str, str] = field(default_factory=dict)   # what to use where a command does not apply

    def trainer_class(self) -> Any:
        return _resolve(self.trainer)

    def load_policy(self, run_dir: Path) -> Any:
        if self.policy is None:
            raise self.refusal("policy", run_dir)
        return _resolve(self.policy)(run_dir)

    def count_flops(self, run_dir: Path) -> tuple[Any, str, float]:
        if self.flops is None:
            raise self.refusal("flops", run_dir)
        return _resolve(self.flops)(run_dir)

    def refusal(self, what: str, run_dir: Path) -> UsageError:
        """The one-line refusal of a command (``policy``, ``flops``, ``export``) this kind does not support."""
        hint = self.instead.get(what, "")
        describe = self.describe
        if "{algo}" in describe:              # the offline kinds name their algorithm
            from .training.run_dir import load_run_config
            describe = describe.format(algo=load_run_config(Path(run_dir)).run.algo)
        return UsageError(f"{str(run_dir)!r} is {describe}: " + {
            "policy": "it has no single policy to load", "flops": "FLOP accounting does not cover it",
            "export": "export covers SAC, PPO and DQN policies"}[what] + (f"; {hint}" if hint else ""))


_INSPECT = "`neuropath inspect` gives its parameters and forward FLOPs per task"

KINDS: dict[str, RunKind] = {k.name: k for k in (
    RunKind("sac", "an online SAC run", "neuropath.training.loops.sac:Trainer", "neuropath.policy:sac_policy",
            "neuropath.efficiency.counted_flops:count_sac_run", exports=True),
    RunKind("ppo", "a PPO run", "neuropath.training.loops.ppo:PPOTrainer", "neuropath.training.loops.ppo:PPOPolicy",
            "neuropath.efficiency.counted_flops:count_ppo_run", exports=True),
    RunKind("dqn", "a DQN run", "neuropath.training.loops.dqn:DQNTrainer", "neuropath.training.loops.dqn:DQNPolicy",
            "neuropath.efficiency.counted_flops:count_dqn_run", exports=True, exported_network="q"),
    RunKind("mt10", "a multi-task (MT10) run", "neuropath.training.loops.mtsac:MultiTaskTrainer",
            instead={"policy": "its evaluations are in metrics.csv; `neuropath inspect` shows them per task",
                     "flops": _INSPECT, "export": _INSPECT}),
    RunKind("offline", "an offline ({algo}) run", "neuropath.training.loops.offline:OfflineTrainer",
            "neuropath.training.loops.offline:OfflinePolicy", "neuropath.efficiency.counted_flops:count_offline_run"),
    RunKind("offline-mt10", "a multi-task offline (MT10, {algo}) run",
            "neuropath.training.loops.offline_multitask:MultiTaskOfflineTrainer",
            flops="neuropath.efficiency.counted_flops:count_offline_run",
            instead={"policy": "its evaluations are in metrics.csv; `neuropath inspect` shows them per task",
                     "export": _INSPECT}),
)}


def kind_of(cfg) -> RunKind:
    """The kind of run ``cfg`` (a `Config`) describes: the benchmark and the dataset decide first, then the
    algorithm (``auto`` is SAC online)."""
    if cfg.run.benchmark is not None:
        return KINDS["offline-mt10" if cfg.offline.dataset is not None else "mt10"]
    if cfg.offline.dataset is not None:
        return KINDS["offline"]
    return KINDS.get(cfg.run.algo, KINDS["sac"])


def kind_of_run(run_dir: str | Path) -> RunKind:
    """The kind of an existing run, from its ``config.yaml`` (`UsageError` if missing or corrupt)."""
    from .training.run_dir import load_run_config
    return kind_of(load_run_config(Path(run_dir)))


def _resolve(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class Trainer:
    """A trainer for any kind of run: ``Trainer(cfg)`` builds the loop its config names (SAC, PPO, DQN,
    MT10, offline), ``Trainer.resume(run_dir)`` continues any run. Each returns that loop's own trainer,
    with ``train()``, ``run_dir`` and ``result_line(row)``."""

    def __new__(cls, cfg):            # noqa: D102 - a factory: the object is the kind's trainer
        return kind_of(cfg).trainer_class()(cfg)

    @staticmethod
    def resume(run_dir: str | Path, **kept):
        """Continue ``run_dir`` from its latest checkpoint (``steps``, ``threads``, ``progress``, ``device``)."""
        return kind_of_run(run_dir).trainer_class().resume(run_dir, **kept)


def train(trainer, on_eval: Callable[[dict[str, Any]], bool | None] | None = None) -> dict[str, Any]:
    """Train any kind's trainer to its budget and return its last evaluation row; ``on_eval(row)`` sees
    every evaluation row as it is written (SB3's ``EvalCallback``), and returning False stops the run
    after the step (rollout, update) it was evaluated in, on a checkpoint (``Trainer.resume`` continues it)."""
    return trainer.train(on_eval=on_eval)
