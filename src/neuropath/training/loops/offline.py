"""The offline loop (``neuropath train --dataset ID --algo iql|bcq``): updates on a fixed dataset, evaluation
in the real environment, and NPF's single-shot pathways.

``--pathway npf``: before the first update, every network the algorithm trains (IQL: actor, twin Q, V)
(BCQ: VAE, perturbation actor, twin critic) is scored once with SNIP on its own training loss summed over ``--npf-batches`` dataset batches; the
top ``--keep-ratio`` of each network (global over its layers; ``--scope member``: over each of its member
networks) is its pathway, fixed for the whole run. ``--npf-actor-loss bc`` scores IQL's actor without the
advantage weights, which come from critics that are still random when NPF scores.
``--pathway random``: a random mask of the same size; ``dense``: no masks.

``--steps`` counts gradient updates; ``--eval-every`` updates, ``--eval-episodes`` deterministic
episodes give the return and the normalised score 100·(return − random)/(expert − random) with the
dataset's reference scores. Checkpoints and ``--resume`` as for online runs (the dataset is re-read).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ...algos.common import Batch
from ...algos.bcq import BCQ, BCQConfig
from ...algos.iql import IQL, IQLConfig
from ...envs.make import make_env
from ...errors import UsageError
from ...pathways import density
from ...pathways.masks import copy_masks, cut_off_inputs
from ...pathways.methods import RandomStatic, StaticSNIP
from .. import checkpoint
from ..build import use_sparse_execution
from ..config import Config, algo_settings
from ..evaluate import PredictsLikeSB3, eval_seed, run_episodes, summarise
from ..guards import check_finite_losses
from ..logging import cut_off_warning
from ..run import Run
from ..run_dir import latest_checkpoint

FIELDS = ["step", "return_mean", "return_std", "normalized_score", "wall_time", "cpu_seconds", "energy_j",
          "energy_mode"]


class OfflineData:
    """A Minari dataset as flat float32 tensors, with its reference scores and environment id.

    ``transitions``: train on a random subset of that many transitions (whole episodes in an order
    drawn from ``seed``, the last one cut), for sample-size studies on one made dataset."""

    def __init__(self, dataset_id: str, normalize_reward: bool, transitions: int | None = None,
                 seed: int = 0) -> None:
        import minari

        from ...data.datasets import Episode, cap, check_complete, provenance, training_actions
        if dataset_id not in minari.list_local_datasets():
            known = ", ".join(sorted(minari.list_local_datasets())) or "none; make one with `neuropath dataset make`"
            raise UsageError(f"no local dataset {dataset_id!r} (local datasets: {known})")
        try:
            data = minari.load_dataset(dataset_id)
            meta = data.storage.metadata
            check_complete(dataset_id, meta)
            episodes = [Episode(ep.observations, training_actions(ep.actions, meta), ep.rewards,   # in [-1, 1]
                                bool(ep.terminations[-1])) for ep in data.iterate_episodes()]
        except UsageError:
            raise
        except Exception as exc:          # h5py/minari raise many kinds on a half-written dataset
            raise UsageError(f"dataset {dataset_id!r} cannot be read ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); make it again") from None
        made = provenance(meta)
        self.made = made
        self.env_id = made.get("env") or (data.spec.env_spec.id if data.spec.env_spec is not None else None)
        self.ref_min, self.ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
        total = sum(len(e) for e in episodes)
        if transitions is not None:
            if not 0 < transitions <= total:
                raise UsageError(f"--transitions {transitions} is more than dataset {dataset_id!r} holds ({total})"
                                 if transitions > total else f"--transitions must be >= 1, got {transitions}")
            episodes = cap(episodes, transitions, seed)
        returns = [float(e.rewards.sum()) for e in episodes]
        rewards = np.concatenate([e.rewards for e in episodes]).astype(np.float32)
        if normalize_reward and len(returns) > 1 and max(returns) > min(returns):
            rewards = rewards * (1000.0 / (max(returns) - min(returns)))
        not_done = []
        for e in episodes:
            nd = np.ones(len(e), np.float32)
            nd[-1] = 0.0 if e.terminated else 1.0          # a time limit still bootstraps
            not_done.append(nd)
        self.obs = torch.as_tensor(np.concatenate([e.obs[:-1] for e in episodes]), dtype=torch.float32)
        self.next_obs = torch.as_tensor(np.concatenate([e.obs[1:] for e in episodes]), dtype=torch.float32)
        self.action = torch.as_tensor(np.concatenate([e.actions for e in episodes]), dtype=torch.float32)
        self.reward = torch.as_tensor(rewards).unsqueeze(1)
        self.not_done = torch.as_tensor(np.concatenate(not_done)).unsqueeze(1)
        self.episodes = len(episodes)

    def __len__(self) -> int:
        return len(self.obs)

    def to(self, device: torch.device) -> None:
        """Keep the whole dataset where the updates run (batches are then gathered there)."""
        for name in ("obs", "next_obs", "action", "reward", "not_done"):
            setattr(self, name, getattr(self, name).to(device))

    def sample(self, batch: int, generator: torch.Generator) -> Batch:
        idx = torch.randint(0, len(self), (batch,), generator=generator)
        return Batch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.not_done[idx])

    def normalized(self, ret: float) -> float | None:
        if self.ref_min is None or self.ref_max is None or self.ref_max == self.ref_min:
            return None
        return 100.0 * (ret - self.ref_min) / (self.ref_max - self.ref_min)


def build_algo(cfg: Config, obs_dim: int, act_dim: int, *, tasks: int = 0, per_task_heads: bool = False) -> IQL | BCQ:
    """The run's offline algorithm with its settings (IQL: --hidden; BCQ: its own official sizes);
    ``tasks`` > 0: one network over that many tasks (multi-task offline)."""
    shape = {"tasks": tasks, "per_task_heads": per_task_heads}
    if cfg.run.algo == "iql":
        return IQL(obs_dim, act_dim, algo_settings(IQLConfig, cfg, "iql"), cfg.run.steps, **shape)
    return BCQ(obs_dim, act_dim, algo_settings(BCQConfig, cfg, "bcq"), cfg.run.steps, **shape)


class OfflinePolicy(PredictsLikeSB3):
    """An offline run's policy: ``act_unit`` in [-1, 1] for `neuropath eval`, SB3's ``predict`` in the
    environment's own bounds (like `neuropath.Policy`)."""

    def __init__(self, run_dir: Path) -> None:
        saved = latest_checkpoint(run_dir)
        meta = saved.meta
        self.algo = build_algo(saved.cfg, meta["obs_dim"], meta["act_dim"])
        checkpoint.load_trained(self.algo, saved.state["algo"], saved.path)
        self.env_id = meta["env"]
        env = make_env(self.env_id)
        try:
            space = env.unwrapped.action_space
            self.low, self.high = np.asarray(space.low), np.asarray(space.high)
        finally:
            env.close()

    @property
    def density(self) -> float:
        return density(self.algo.actor)

    def act_unit(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.algo.act(observation, deterministic)


def npf_losses(algo: IQL | BCQ, actor_loss: str) -> dict:
    """The losses that score NPF's pathways: each network's own training loss, or (``bc``) IQL's actor
    scored on the unweighted log-likelihood."""
    losses = dict(algo.losses())
    if actor_loss == "bc":
        losses["actor"] = algo.bc_loss
    return losses


class OfflineTrainer(Run):
    """The single-task offline loop; `MultiTaskOfflineTrainer` overrides the data, the algorithm's
    shape, the pathway initialisation and the evaluation hooks."""

    logs_episodes = False

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        cfg.validate()
        if cfg.offline.dataset is None:
            raise UsageError("OfflineTrainer needs --dataset")
        super().__init__(cfg, _resume_from)
        r = cfg.run
        self.kind_name = r.algo
        self.generator = torch.Generator().manual_seed(r.seed)      # on the CPU: indices are drawn there
        obs_dim, act_dim = self._load_data()
        self.data.to(self.device)
        self.algo = self._build_algo(obs_dim, act_dim).to(self.device)
        self.fields = self._fields()
        self.optimizers = self.algo.make_optimizers()
        self.schedulers = self.algo.make_schedulers(self.optimizers)
        self.tied = [t for ts in self.algo.tied.values() for t in ts]
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)

    # ---- hooks ----------------------------------------------------------------------------------

    def _load_data(self) -> tuple[int, int]:
        """Read the dataset and make the evaluation environment; returns (obs_dim, act_dim)."""
        r, o = self.cfg.run, self.cfg.offline
        self.data = OfflineData(o.dataset, o.normalize_reward, o.transitions, r.seed)
        if self.data.env_id is None:
            raise UsageError(f"dataset {o.dataset!r} names no single environment to evaluate in; "
                             "for a Meta-World task's dataset train all tasks with --benchmark MT10 --dataset KIND")
        r.env = self.data.env_id      # the dataset decides; config.yaml, `runs` and `inspect` then name it
        self.env = make_env(self.data.env_id)
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        if self.data.obs.shape[1] != obs_dim or self.data.action.shape[1] != act_dim:
            raise UsageError(f"dataset {o.dataset!r} does not fit {self.data.env_id} (observation/action sizes)")
        return obs_dim, act_dim

    def _build_algo(self, obs_dim: int, act_dim: int) -> IQL | BCQ:
        return build_algo(self.cfg, obs_dim, act_dim)

    def _fields(self) -> list[str]:
        return FIELDS[:4] + [f"{n}_density" for n in self.algo.networks] + FIELDS[4:]

    def postfix(self) -> dict[str, str]:
        row = self._last_eval_row
        return {"ret": f"{row['return_mean']:.0f}", "score": str(row["normalized_score"])} if row else {}


    # ---- NPF: one score from the dataset, fixed masks --------------------------------------------

    def _init_pathways(self) -> list[dict]:
        p, o = self.cfg.pathway, self.cfg.offline
        events = []
        losses = npf_losses(self.algo, o.npf_actor_loss)
        if p.pathway == "dense":
            self.initialised = True
            return events
        for name, net in self.algo.networks.items():
            if p.pathway == "npf":
                batches = [self.data.sample(p.score_batch, self.generator) for _ in range(o.npf_batches)]
                result = StaticSNIP(self.cfg.keep_ratio_of(name), p.scope, self.cfg.score_of(name), seed=self.cfg.run.seed,
                                    synflow_rounds=p.synflow_rounds).init(net, lambda n=name, bs=batches: sum(losses[n](b) for b in bs))
            else:
                result = RandomStatic(self.cfg.keep_ratio_of(name), seed=self.cfg.run.seed).init(net, None)
            cut = cut_off_inputs(net)
            events.append({"step": 0, "net": name, "event": "init", "changed": result.changed,
                           "density": round(density(net), 6), "frozen": True, **({"cut_off": cut} if cut else {})})
            if cut:
                tqdm.write(cut_off_warning(name, net, cut), file=sys.stderr)
        for name, targets in self.algo.tied.items():
            for target in targets:
                copy_masks(self.algo.networks[name], target)
        self.initialised = True
        return events

    # ---- the loop ---------------------------------------------------------------------------------

    def result_line(self, row: dict[str, Any]) -> str:
        """The last evaluation in one line, as ``neuropath train`` prints it at the end (a multi-task run's
        rows hold the mean success over its tasks)."""
        if "success_mean" in row:
            return (f"update {row['step']}: mean success {row['success_mean']:.2f} over {len(self.tasks)} tasks "
                    f"(actor density {row['actor_density']:.3f} per task)")
        score = f", normalised score {row['normalized_score']}" if row["normalized_score"] != "" else ""
        return (f"update {row['step']}: eval return {row['return_mean']:.1f} ± {row['return_std']:.1f}{score} "
                f"(actor density {row['actor_density']:.3f})")

    def begin(self) -> None:
        if not self.initialised:
            for event in self._init_pathways():
                self.logger.pathway_event(event)

    def advance(self) -> None:
        """One update on a dataset batch; an evaluation and a checkpoint when due."""
        r = self.cfg.run
        losses = self.algo.update(self.data.sample(self.algo.cfg.batch_size, self.generator),
                                  self.optimizers, self.schedulers)
        self.step += 1
        self.logger.tick()
        if self.step % r.log_every == 0:
            check_finite_losses(losses, self.step, self.run_dir)
            self.logger.scalars(self.step, {k: float(v) for k, v in losses.items()})
        if self.step % r.eval_every == 0 or self.step == r.steps:
            self.evaluate()
        if self.checkpoint_due() and self.step < r.steps:
            self.save_checkpoint()

    def evaluation(self) -> dict[str, Any]:
        r = self.cfg.run
        returns, lengths = run_episodes(self.env, lambda o: self.algo.act(o, deterministic=True),
                                        r.eval_episodes, seed=eval_seed(r.seed, self.step))
        s = summarise(returns, lengths)
        score = self.data.normalized(s["return_mean"])
        return {"return_mean": round(s["return_mean"], 3), "return_std": round(s["return_std"], 3),
                "normalized_score": "" if score is None else round(score, 2),
                **{f"{n}_density": round(density(net), 6) for n, net in self.algo.networks.items()}}

    # ---- checkpoints: what an offline run keeps beyond the common state -----------------------------

    def meta(self) -> dict[str, Any]:
        return {"dataset": self.cfg.offline.dataset, "env": self.data.env_id,
                "obs_dim": self.algo.obs_dim, "act_dim": self.algo.act_dim, "hidden": self.cfg.sac.hidden}

    def extra_modules(self) -> dict[str, Any]:
        return {"schedulers": self.schedulers}

    def extra_state(self) -> dict[str, Any]:
        return {"schedulers": {k: s.state_dict() for k, s in self.schedulers.items()}}

    def extra_rng(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_extra(self, state: dict[str, Any], path: Path) -> None:
        self.generator.set_state(state["rng"]["generator"].cpu())
