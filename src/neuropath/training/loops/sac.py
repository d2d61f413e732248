"""The online training loop: act → step → store → update → maybe change masks → evaluate
→ checkpoint. `Trainer` owns a run directory; `Trainer.resume` continues one.

Checkpoints are taken at the first episode end after each ``checkpoint_every`` steps,
before the environment resets: the state to restore is then just the environment's RNG,
and a resumed run replays exactly the same transitions (tested on CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...algos.sac import SAC
from ...data.replay import ReplayBuffer
from ...engine.fused_sac import FusedSACUpdate
from ...engine.sparse_act import SparseActing
from ...envs.make import check_env_id, env_rng_state, make_env, set_env_rng_state
from ...errors import UsageError
from ...pathways import density
from ...pathways.masks import ranges
from .. import checkpoint
from ..build import build_pathways, check_reachable, needs_init_data, use_sparse_execution, uses_rlx2_extras
from ..config import Config
from ..evaluate import eval_seed, run_episodes, summarise
from ..guards import check_finite_losses
from ..pathway_driver import PathwayDriver
from ..policy_file import save_actor
from ..run import EpisodicRun
from ..swap_probe import SwapProbe


class Trainer(EpisodicRun):
    """One SAC run with pathways. ``Trainer(cfg).train()`` starts a new run directory and
    refuses an existing non-empty one; ``Trainer.resume(run_dir).train()`` continues."""

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        cfg.validate()
        if cfg.offline.dataset is not None:
            raise UsageError("an offline run (--dataset): train it with OfflineTrainer (`neuropath train --dataset`)")
        if cfg.run.benchmark is not None:
            raise UsageError(f"{cfg.run.benchmark} is a multi-task run: train it with MultiTaskTrainer "
                             "(`neuropath train --benchmark`); resuming multi-task runs is not supported yet")
        if cfg.run.algo != "sac":
            raise UsageError(f"Trainer runs SAC; --algo {cfg.run.algo} runs with its own loop (`neuropath train`)")
        check_env_id(cfg.run.env)
        super().__init__(cfg, _resume_from)
        r = cfg.run
        self.env = make_env(r.env)
        self.eval_env = make_env(r.env)
        obs_dim = self.env.observation_space.shape[0]
        act_dim = self.env.action_space.shape[0]
        self.algo = SAC(obs_dim, act_dim, cfg.sac).to(self.device)
        self.optimizers = self.algo.make_optimizers()
        check_reachable(cfg, self.algo)
        self.pathways = build_pathways(cfg, self.algo, self.optimizers)
        self.driver = PathwayDriver(cfg, self.algo, self.pathways, lambda: self.logger,
                                    on_freeze=self._warn_blind_actions)
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)
        # with the sparse kernels, the whole update runs over the pathway's entries where it can
        self.fused = FusedSACUpdate(self.algo, self.optimizers) if self.sparse else None
        if self.sparse:               # and one action (training and evaluation) in a few compiled calls
            self.algo.act_executor = SparseActing(self.algo.actor)
            if not r.threads:         # the kernels are single-threaded: more torch threads only burn CPU
                torch.set_num_threads(1)
        self.rlx2 = cfg.rlx2 if uses_rlx2_extras(cfg) else None
        self.dynamic_buffer = bool(self.rlx2 and self.rlx2.dynamic_buffer)
        self.buffer = ReplayBuffer(obs_dim, act_dim, min(r.replay_size, r.steps), self.device,
                                   store_mean=self.dynamic_buffer)
        self.rng = np.random.default_rng(r.seed)
        self.probe = SwapProbe(self.algo)

        self.obs: np.ndarray | None = None
        self._metrics: dict[str, torch.Tensor] = {}

    # ---- the loop -----------------------------------------------------------------------------

    def begin(self) -> None:
        if not self.initialised:
            self._init_pathways()
        if self.obs is None:
            self.obs = self._reset()

    def can_checkpoint(self) -> bool:
        return self.initialised and self.obs is not None and self.step > 0

    def advance(self) -> dict[str, Any]:
        """One environment step: act, store, update, the mask update and evaluation when due (in the order
        ``--boundary-order`` says), logging, and a checkpoint at the first episode end past its step."""
        r, algo, buf = self.cfg.run, self.algo, self.buffer
        batch_size = self.cfg.sac.batch_size
        mean = None
        if self.step < r.seed_steps:
            action = self.rng.uniform(-1.0, 1.0, self.algo.act_dim).astype(np.float32)
        elif self.dynamic_buffer:
            action, mean = algo.act_with_mean(self.obs)
        else:
            action = algo.act(self.obs)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        buf.add(self.obs, action, float(reward), next_obs, bool(terminated), mean)
        self.ep_return += float(reward)
        self.ep_len += 1
        self.step += 1
        self.logger.tick()
        done = bool(terminated or truncated)
        self.obs = next_obs

        if self.step >= r.seed_steps and len(buf) >= batch_size:
            self._metrics = self._update(self._sample(batch_size))
        # At a step where both fall, the authors evaluate (and test the freeze) before the mask
        # changes: an evaluation then never sees a pathway swapped in a moment ago (eval-first).
        before, after = self.evaluation_sides()
        if before:
            self.evaluate()
        self._maybe_update_masks(episode_end=done)
        if self.probe.pending:
            for event in self.probe.due(self.step):
                self.logger.pathway_event(event)
        if self.dynamic_buffer and self.step % self.rlx2.buffer_check_every == 0:
            self._adjust_buffer()

        if after:
            self.evaluate()
        if self.step % r.log_every == 0:
            check_finite_losses(self._metrics, self.step, self.run_dir)
            self._log_scalars(self._metrics, self.steps_per_second())
            self.logger.progress(self.step, self.postfix())
        if done:
            self.end_episode()
            self.obs = self._reset()
        return {"done": done}

    def _update(self, batch) -> dict[str, torch.Tensor]:
        """One SAC update: the fused engine's where it applies, else torch's (on a whole state)."""
        if self.fused is not None:
            out = self.fused.update(batch)
            if out is not None:
                return out
            self.fused.sync()
        return self.algo.update(batch, self.optimizers)

    def sync(self) -> None:
        """Make the torch state whole (what the fused update skipped outside the pathway): before anything
        reads weights outside the pathway or the optimizers' state."""
        if self.fused is not None:
            self.fused.sync()

    def _sample(self, batch_size: int):
        """A training minibatch: n-step once RLx2's delay has passed, else 1-step."""
        x = self.rlx2
        if x is not None and x.nstep > 1 and self.algo.updates >= x.nstep_delay:
            return self.buffer.sample_nstep(batch_size, x.nstep, self.cfg.sac.gamma)
        return self.buffer.sample(batch_size)

    def _adjust_buffer(self) -> None:
        """RLx2's dynamic capacity, as its code does it: measure the policy distance D on the
        oldest transitions; above the threshold, drop the oldest fraction once."""
        x, buf = self.rlx2, self.buffer
        obs, mean = buf.oldest_rows(x.buffer_check_size)
        distance = self.algo.policy_distance(obs, mean)
        dropped = buf.drop_oldest(int(x.buffer_drop * len(buf))) \
            if distance > x.buffer_threshold and len(buf) > x.buffer_min else 0
        self.logger.pathway_event({"step": self.step, "net": "replay", "event": "buffer",
                                   "distance": round(distance, 6), "dropped": dropped, "size": len(buf)})

    def _reset(self) -> np.ndarray:
        if self.episodes == 0 and self.step == 0:
            obs, _ = self.env.reset(seed=self.cfg.run.seed)
        else:
            obs, _ = self.env.reset()
        self.ep_return, self.ep_len = 0.0, 0
        return obs

    # ---- pathways ----------------------------------------------------------------------------

    def _init_pathways(self) -> None:
        """Initial masks. DAPD and static SNIP score the untrained networks on ``init_steps``
        transitions of the untrained (stochastic) policy, as the authors do; that data is
        then dropped and does not count towards the step budget."""
        p = self.cfg.pathway
        if self.pathways:
            sample: Callable[[], Any] | None = None
            if needs_init_data(self.cfg):
                init_buf = self._collect_init_data(max(p.init_steps, 1))
                sample = lambda: init_buf.sample(p.score_batch)   # noqa: E731
            self.driver.init(self.step, sample, self.algo.losses())
        self.initialised = True

    def _collect_init_data(self, n: int) -> ReplayBuffer:
        buf = ReplayBuffer(self.algo.obs_dim, self.algo.act_dim, n, self.device)
        obs, _ = self.env.reset(seed=self.cfg.run.seed + 7919)
        for _ in range(n):
            action = self.algo.act(obs)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            buf.add(obs, action, float(reward), next_obs, bool(terminated))
            obs = next_obs if not (terminated or truncated) else self.env.reset()[0]
        return buf

    def _maybe_update_masks(self, *, episode_end: bool) -> None:
        """The due pathways' new masks (`PathwayDriver.update`), with the swap probe measuring on one fixed
        batch what each swap does to the policy and the critic."""
        if not self.pathways:
            return
        due = self.driver.due(self.step, episode_end=episode_end)
        if not due:
            return
        self.sync()                       # scoring reads the dense networks, the update the optimizers
        p, buf = self.cfg.pathway, self.buffer
        probe_batch = buf.recent_spread(self.probe.rows, p.window)    # one fixed batch for every network
        self.driver.update(
            self.step, due, recent=lambda: buf.sample_recent(p.score_batch, p.window),
            losses=lambda: self.algo.losses(temperature=self._score_temperature()),
            replay=lambda: buf.sample(p.score_batch), replay_losses=lambda: self.algo.losses(training=True),
            before=lambda name: self.probe.before(name, probe_batch),
            after=lambda name, event: event.update(shift=round(self.probe.after(name, self.step), 6)))

    def _score_temperature(self) -> float | None:
        """α in the scoring losses: None (the learned one) or the initial one (the authors)."""
        return self.cfg.sac.init_temperature if self.cfg.pathway.score_temperature == "init" else None

    def _warn_blind_actions(self, name: str, cut: dict[str, list[int]]) -> None:
        """SAC's actor learns through min(Q1, Q2): an action both Q networks are blind to gets no gradient."""
        if name != "critic" or len(cut) != 2:
            return
        n_obs = self.algo.obs_dim
        blind = sorted(i - n_obs for i in set.intersection(*(set(idx) for idx in cut.values())) if i >= n_obs)
        if blind:
            what, it = ("actions", "them") if len(blind) > 1 else ("action", "it")
            self.logger.warn(f"warning: both Q networks are blind to {what} {ranges(blind)}, so the actor gets "
                             f"no gradient for {it}; in the score ablation such runs never learnt, while DAPD "
                             "and --score synflow kept every action connected")

    def phase(self) -> str:
        return self.driver.phase()

    # ---- evaluation and logging -------------------------------------------------------------

    def evaluation(self) -> dict[str, Any]:
        r = self.cfg.run
        returns, lengths = run_episodes(self.eval_env, lambda o: self.algo.act(o, deterministic=True),
                                        r.eval_episodes, seed=eval_seed(r.seed, self.step))
        return {**summarise(returns, lengths), "phase": self.phase(),
                "actor_density": round(density(self.algo.actor), 6),
                "critic_density": round(density(self.algo.critic), 6)}

    def before_logging(self, row: dict[str, Any]) -> None:
        self._save_snapshot()

    def after_evaluation(self, row: dict[str, Any]) -> None:
        self.driver.observe(self.step, row["return_mean"])

    def _save_snapshot(self) -> None:
        """The actor at this evaluation, as a policy file (RUN/snapshots/policy-<step>.pt): offline
        datasets need the policy of a given quality (`neuropath dataset make ... medium`)."""
        folder = self.run_dir / "snapshots"
        folder.mkdir(exist_ok=True)
        space = self.env.unwrapped.action_space
        path = folder / f"policy-{self.step:09d}.pt"
        try:
            save_actor(self.algo.actor, space.low, space.high, self.cfg.run.env, path)
        except (OSError, RuntimeError) as exc:
            if checkpoint.is_disk_full(exc):
                path.with_name(f".tmp-{path.name}").unlink(missing_ok=True)
                raise self.disk_full(path) from None
            raise

    def _log_scalars(self, metrics: dict[str, torch.Tensor], sps: float) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        values["charts/SPS"] = sps
        values["pathway/actor_density"] = density(self.algo.actor)
        values["pathway/critic_density"] = density(self.algo.critic)
        self.logger.scalars(self.step, values)
        self.logger.flush()

    def postfix(self) -> dict[str, str]:
        ret = "-" if self.last_eval is None else f"{self.last_eval:.0f}"
        return {"eval": ret, "phase": self.phase(),
                "actor_sp": f"{1 - density(self.algo.actor):.1%}",
                "critic_sp": f"{1 - density(self.algo.critic):.1%}"}

    # ---- checkpoints: what SAC keeps beyond the common state ------------------------------------

    def meta(self) -> dict[str, Any]:
        return {"env": self.cfg.run.env, "obs_dim": self.algo.obs_dim, "act_dim": self.algo.act_dim,
                "hidden": self.cfg.sac.hidden}

    def extra_rng(self) -> dict[str, Any]:
        return {"env": env_rng_state(self.env)}

    def extra_state(self) -> dict[str, Any]:
        return {"replay": self.buffer.state_dict(), "swap_probe": self.probe.state_dict()}

    def checkpointed_replay(self) -> ReplayBuffer:
        return self.buffer

    def load_replay(self, path: Path, state: dict[str, Any]) -> None:
        self.buffer.load(path / "replay.npy", state["replay"])

    def load_checkpoint(self, path: Path) -> None:
        if self.fused is not None:
            self.fused.forget()           # its views and skipped work belong to the state being replaced
        super().load_checkpoint(path)

    def load_extra(self, state: dict[str, Any], path: Path) -> None:
        self.probe.load_state_dict(state.get("swap_probe", {}))
        self.env.reset(seed=self.cfg.run.seed)      # build the env, then restore its RNG
        set_env_rng_state(self.env, state["rng"]["env"])
        # At an episode end the next reset replays exactly; a run that stopped at its step
        # budget mid-episode and is extended starts a new episode there.
        self.obs = None
        self.ep_return, self.ep_len = 0.0, 0
