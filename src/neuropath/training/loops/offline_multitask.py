"""Multi-task offline RL on Meta-World MT10 (``neuropath train --benchmark MT10 --dataset KIND --algo bcq|iql``).

One network for all tasks, each layer a `TaskLinear` (every pass batched over tasks), the task one-hot
appended to the 39 Meta-World features; each update draws the same number of transitions from every
task's dataset. The methods of the paper's offline MT10 table:

- ``--pathway npf``: per-task single-shot pathways. Before the first update every network the algorithm
  trains is scored once with SNIP, task t on its own dataset only (``--npf-batches`` batches, the
  losses summed), and task t keeps the top ``--keep-ratio`` of its scores (global over the layers). The
  weights are then one shared tensor: task t runs W ⊙ m_t, and a weight in several pathways gets the
  average of those tasks' gradients (pathways/multitask.py) — the online multi-task rule after freeze;
- ``--pathway dense``: MT, one dense network with the task one-hot; with ``--heads per-task``: MHMT,
  a shared trunk with one output layer per task;
- ``--pathway random``: a random pathway of the same size per task (the control).

Evaluation: every ``--eval-every`` updates, ``--eval-episodes`` deterministic episodes per task in the
real MT10 environments; the score is the success rate (an episode succeeds if the environment reports
success at any step), as the paper reports MT10. Episodes are as long as the datasets' own unless
``--episode-steps`` says otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...algos.mtsac import TaskBatch
from ...data.metaworld_datasets import dataset_id
from ...envs.metaworld import MAX_EPISODE_STEPS, make_benchmark, resolve_tasks
from ...errors import UsageError
from ...pathways.multitask import install_task_masks, merge_task_weights, task_density
from ...pathways.scores import network_scores
from ..evaluate import eval_seed
from .offline import OfflineData, OfflineTrainer, build_algo, npf_losses
from .mtsac import _safe, evaluate_tasks

META_WORLD_OBS = 39


class TaskOfflineData:
    """Every task's dataset of one kind as ``[tasks, N, ...]`` tensors (rows past a smaller dataset's end
    are padding, never sampled), observations with the task one-hot appended."""

    def __init__(self, tasks: tuple[str, ...], kind: str, normalize_reward: bool, transitions: int | None,
                 seed: int) -> None:
        import minari
        local = set(minari.list_local_datasets())
        missing = [dataset_id(t, kind) for t in tasks if dataset_id(t, kind) not in local]
        if missing:
            hint = ("`neuropath dataset make RUN expert-replay` from an online MT10 run" if kind == "expert-replay"
                    else f"`neuropath dataset make MT10 {kind}`")
            raise UsageError(f"no local dataset {missing[0]!r} ({len(missing)} of {len(tasks)} tasks missing); "
                             f"make them with {hint}")
        self.parts = [OfflineData(dataset_id(t, kind), normalize_reward, transitions, seed + i)
                      for i, t in enumerate(tasks)]
        for t, part in zip(tasks, self.parts):
            if part.obs.shape[1] != META_WORLD_OBS or part.action.shape[1] != 4:
                raise UsageError(f"dataset {dataset_id(t, kind)!r} does not fit Meta-World (observation "
                                 f"{part.obs.shape[1]}, action {part.action.shape[1]}; expected 39 and 4)")
        n_tasks, rows = len(tasks), max(len(p) for p in self.parts)
        one_hot = torch.eye(n_tasks)

        def stack(get, with_task: bool = False) -> torch.Tensor:
            out = []
            for t, part in enumerate(self.parts):
                x = get(part)
                if with_task:
                    x = torch.cat([x, one_hot[t].expand(len(x), -1)], 1)
                out.append(torch.cat([x, x.new_zeros(rows - len(x), x.shape[1])]))
            return torch.stack(out)

        self.obs = stack(lambda p: p.obs, True)
        self.next_obs = stack(lambda p: p.next_obs, True)
        self.action = stack(lambda p: p.action)
        self.reward = stack(lambda p: p.reward)
        self.not_done = stack(lambda p: p.not_done)
        self.sizes = torch.tensor([len(p) for p in self.parts], dtype=torch.float64)
        self.tasks = torch.arange(n_tasks).unsqueeze(1)
        self.env_id = None          # evaluated in the benchmark's own vector env
        steps = {p.made.get("episode_steps") for p in self.parts}
        self.episode_steps = steps.pop() if len(steps) == 1 and None not in steps else None

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def to(self, device: torch.device) -> None:
        """The stacked datasets where the updates run (``sizes`` stays on the CPU with the generator)."""
        for name in ("obs", "next_obs", "action", "reward", "not_done"):
            setattr(self, name, getattr(self, name).to(device))

    def sample(self, batch: int, generator: torch.Generator) -> TaskBatch:
        """``batch`` transitions of every task, uniformly from its own dataset."""
        idx = (torch.rand(len(self.parts), batch, generator=generator, dtype=torch.float64)
               * self.sizes.unsqueeze(1)).long()
        t = self.tasks
        return TaskBatch(self.obs[t, idx], self.action[t, idx], self.reward[t, idx], self.next_obs[t, idx],
                         self.not_done[t, idx])


class MultiTaskOfflineTrainer(OfflineTrainer):
    """`OfflineTrainer` over all tasks of a benchmark at once; see the module docstring."""

    score_column = "success_mean"

    def _load_data(self) -> tuple[int, int]:
        r, o = self.cfg.run, self.cfg.offline
        self.tasks = resolve_tasks(r.benchmark, r.tasks)
        self.data = TaskOfflineData(self.tasks, o.dataset, o.normalize_reward, o.transitions, r.seed)
        self.episode_steps = r.episode_steps or self.data.episode_steps or MAX_EPISODE_STEPS
        self.env = make_benchmark(r.benchmark, seed=eval_seed(r.seed, 0), episode_steps=self.episode_steps,
                                  tasks=r.tasks)
        return META_WORLD_OBS + len(self.tasks), 4

    def _build_algo(self, obs_dim: int, act_dim: int):
        return build_algo(self.cfg, obs_dim, act_dim, tasks=len(self.tasks),
                          per_task_heads=self.cfg.run.heads == "per-task")

    def _fields(self) -> list[str]:
        return (["step", "success_mean", "return_mean"] + [f"{n}_density" for n in self.algo.networks]
                + ["wall_time", "cpu_seconds", "energy_j", "energy_mode"] + [f"success_{_safe(t)}" for t in self.tasks])

    def postfix(self) -> dict[str, str]:
        return {} if self.last_eval is None else {"success": f"{self.last_eval:.2f}"}

    def meta(self) -> dict[str, Any]:
        meta = super().meta()
        meta.update(benchmark=self.cfg.run.benchmark, tasks=list(self.tasks), heads=self.cfg.run.heads,
                    episode_steps=self.episode_steps)
        return meta

    def check_checkpoint(self, path) -> None:
        from .. import checkpoint
        saved = checkpoint.read_meta(path).get("tasks")
        if saved is not None and tuple(saved) != tuple(self.tasks):
            raise UsageError(f"checkpoint {str(path)!r} has {len(saved)} tasks ({', '.join(saved)}) but this run "
                             f"has {len(self.tasks)} ({', '.join(self.tasks)})")

    def _init_pathways(self) -> list[dict]:
        """Per-task masks (npf: SNIP on each task's own data; random), then one shared weight per layer."""
        p, o = self.cfg.pathway, self.cfg.offline
        losses = npf_losses(self.algo, o.npf_actor_loss)
        events = []
        for name, net in self.algo.networks.items():
            if p.pathway == "npf":        # copies still separate: task t's loss reaches only slice t
                batches = [self.data.sample(p.score_batch, self.generator) for _ in range(o.npf_batches)]
                loss = lambda n=name, bs=batches: sum(losses[n](b) for b in bs)     # noqa: E731
                scores = network_scores(self.cfg.score_of(name), net, loss, keep_ratio=self.cfg.keep_ratio_of(name),
                                        synflow_rounds=p.synflow_rounds, generator=self.generator)
            elif p.pathway == "random":
                scores = network_scores("random", net, None, keep_ratio=1.0, generator=self.generator)
            else:
                scores = None
            changed = install_task_masks(net, scores, self.cfg.keep_ratio_of(name)) if scores is not None else []
            merge_task_weights(net, self.optimizers[name])
            events.append({"step": 0, "net": name, "event": "init", "changed": changed,
                           "density": [round(d, 6) for d in task_density(net)], "frozen": True})
        for name, targets in self.algo.tied.items():
            for target in targets:
                target.load_state_dict(self.algo.networks[name].state_dict())
        self.initialised = True
        return events

    def evaluation(self) -> dict[str, Any]:
        r = self.cfg.run
        per_task, returns = evaluate_tasks(self.env, lambda o: self.algo.act(o, deterministic=True),
                                           r.eval_episodes, self.episode_steps, seed=eval_seed(r.seed, self.step))
        return {"success_mean": round(float(per_task.mean()), 4), "return_mean": round(float(returns.mean()), 2),
                **{f"{n}_density": round(float(np.mean(task_density(net))), 6) for n, net in self.algo.networks.items()},
                **{f"success_{_safe(t)}": round(float(s), 4) for t, s in zip(self.tasks, per_task)}}
