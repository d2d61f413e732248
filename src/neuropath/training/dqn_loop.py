"""The DQN loop (``neuropath train --algo dqn --env MinAtar/Breakout-v1``, or ``--env CartPole-v1``): ε-greedy act → step → store →
an update every ``--train-every`` steps after ``--seed-steps`` → maybe change masks → evaluate → checkpoint.

Atari: rewards are clipped to their sign for training and a lost life ends bootstrapping (the game goes
on: the learning signal of the episodic-life wrapper without restarting the game); evaluation plays whole
games with raw scores. MinAtar and vector environments (CartPole, Acrobot, ...): raw rewards, no lives; a
vector environment's Q-network is an MLP of ``--dqn-hidden`` widths, all of it maskable.

Pathways (training/build.py): the Q-network's fully connected layers (and its convolutions with
``--mask-conv``) are masked; the target network follows its masks. DAPD and static SNIP score the dense
untrained network with the TD loss on ``--init-steps`` transitions of the untrained ε=1 policy (dropped
afterwards, as for SAC); in warm-up the masks are re-scored at episode ends on the last ``--window``
transitions; the moving average, freeze threshold (``--freeze-return``, no automatic value for games)
and freeze step are SAC's. Checkpoints are taken at episode ends and episode ``k`` resets with seed
``--seed + k``, so a run killed after a checkpoint resumes exactly (one stopped at its step budget
mid-episode and extended starts a new episode there).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..algos.dqn import DQN, DQNConfig, linear_epsilon
from ..data.frame_replay import FrameReplay
from ..data.image_replay import ImageReplay
from ..engine.energy import EnergyMeter
from ..envs.pixels import check_dqn_env, dqn_torso, is_atari, make_dqn_env
from ..errors import UsageError
from ..pathways import density, unmasked
from . import checkpoint, run_lock
from .build import build_pathways, check_reachable, needs_init_data, use_sparse_execution
from .config import Config
from .evaluate import EVAL_SEED_OFFSET, PredictsLikeSB3
from .guards import CheckpointClock, check_finite_losses, check_finite_weights
from .logging import RunLogger, truncate_after
from .loop_common import PathwayEvents, resume_trainer, rng_state, set_rng_state, write_config
from .run_dir import load_run_config, resolve_device, start_run


class DQNTrainer(PathwayEvents):
    """One DQN run with pathways; ``DQNTrainer.resume(run_dir)`` continues one."""

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        self.cfg = cfg.validate()
        r = cfg.run
        if r.algo != "dqn":
            raise UsageError("DQNTrainer needs --algo dqn")
        check_dqn_env(r.env)
        self.run_dir = start_run(cfg, _resume_from)
        self.device = resolve_device(r.device)
        self.env = make_dqn_env(r.env)
        self.eval_env = make_dqn_env(r.env)
        self.atari = is_atari(r.env)
        shape = self.env.observation_space.shape
        self.obs_dtype = self.env.observation_space.dtype
        self.algo = make_dqn(cfg, shape, int(self.env.action_space.n)).to(self.device)
        check_reachable(cfg, self.algo)
        self.optimizers = self.algo.make_optimizers()
        self.pathways = build_pathways(cfg, self.algo, self.optimizers)
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)
        # Atari: each frame once, a ring of --replay-size (fixed, so a resumed run with more steps fits);
        # MinAtar: whole observations, min(--replay-size, --steps).
        self.replay = FrameReplay(shape, r.replay_size) if self.atari else ImageReplay(shape, min(r.replay_size, r.steps), self.obs_dtype)
        self.first = True
        self.rng = np.random.default_rng(r.seed)
        self.step = self.episodes = 0
        self.initialised = not self.pathways
        self.last_eval: float | None = None
        self._last_eval_row: dict[str, Any] = {}
        self.next_checkpoint = r.checkpoint_every
        self.clock = CheckpointClock(r.checkpoint_minutes)
        self.obs: np.ndarray | None = None
        self.lives = 0
        self.ep_return, self.ep_len = 0.0, 0
        self.logger: RunLogger | None = None
        self.meter: EnergyMeter | None = None
        self.cpu_before = 0.0
        self._saved_step = -1

    @classmethod
    def resume(cls, run_dir: str | Path, *, steps: int | None = None, threads: int | None = None,
               progress: bool | None = None, device: str | None = None) -> "DQNTrainer":
        return resume_trainer(cls, run_dir, steps=steps, threads=threads, progress=progress, device=device)

    # ---- the loop -----------------------------------------------------------------------------

    def epsilon(self) -> float:
        d = self.cfg.dqn
        return linear_epsilon(self.step, d.eps_start, d.eps_end, d.eps_decay_steps)

    @run_lock.locked
    def train(self) -> dict[str, Any]:
        r, d = self.cfg.run, self.cfg.dqn
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.cfg, self.run_dir)
        truncate_after(self.run_dir, self.step)
        self.logger = RunLogger(self.run_dir, start_step=self.step, total_steps=r.steps, progress=r.progress,
                                hparams=self.cfg.to_dict())
        self.meter = EnergyMeter(self.device).start()
        metrics: dict[str, torch.Tensor] = {}
        t_last, s_last = time.perf_counter(), self.step
        try:
            if not self.initialised:
                self._init_pathways()
            if self.obs is None:
                self._reset(seed=r.seed + self.episodes)
            while self.step < r.steps:
                action = self.algo.act(self.obs, self.epsilon(), self.rng)
                next_obs, reward, terminated, truncated, info = self.env.step(action)
                lives = int(info.get("lives", 0))
                life_lost = self.atari and lives < self.lives
                self.lives = lives
                stored = float(np.sign(reward)) if self.atari else float(reward)
                self.replay.add(self.obs, action, stored, next_obs, bool(terminated or life_lost), first=self.first)
                self.first = False
                self.ep_return += float(reward)
                self.ep_len += 1
                self.step += 1
                self.logger.tick()
                self.obs = next_obs
                done = bool(terminated or truncated)
                if self.step > r.seed_steps and self.step % d.train_every == 0 and len(self.replay) >= d.dqn_batch_size:
                    metrics = self.algo.update(self.replay.sample(d.dqn_batch_size).to(self.device), self.optimizers)
                if self.pathways:
                    self._maybe_update_masks(episode_end=done)
                if self.step % r.eval_every == 0 or self.step == r.steps:
                    self.evaluate()
                if self.step % r.log_every == 0:
                    now = time.perf_counter()
                    sps = (self.step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, self.step
                    check_finite_losses(metrics, self.step, self.run_dir)
                    self.logger.scalars(self.step, {**{k: float(v) for k, v in metrics.items()}, "charts/SPS": sps,
                                                    "charts/epsilon": self.epsilon(),
                                                    "pathway/q_density": density(self.algo.q)})
                    self.logger.progress(self.step, {"phase": self.phase(),
                                                     "eval": "-" if self.last_eval is None else f"{self.last_eval:.1f}"})
                if done:
                    self.logger.episode(self.step, self.ep_return, self.ep_len)
                    self.episodes += 1
                    if self.step >= self.next_checkpoint or self.step >= r.steps or self.clock.due():
                        self.save_checkpoint()
                    self._reset(seed=r.seed + self.episodes)
            if self._last_eval_row.get("step") != self.step:
                self.evaluate()
            if self._saved_step != self.step:
                self.save_checkpoint()
            return self._last_eval_row
        except KeyboardInterrupt:
            if self.step > 0 and self._saved_step != self.step:
                self.save_checkpoint()
            raise
        finally:
            self.logger.close()
            self.logger = None

    def _reset(self, seed: int | None = None) -> None:
        self.obs, info = self.env.reset(seed=seed)
        self.first = True
        self.lives = int(info.get("lives", 0))
        self.ep_return, self.ep_len = 0.0, 0

    # ---- pathways -----------------------------------------------------------------------------

    def _init_pathways(self) -> None:
        p = self.cfg.pathway
        losses = self.algo.losses()
        sample = None
        if needs_init_data(self.cfg):
            init = ImageReplay(self.env.observation_space.shape, max(p.init_steps, 1), self.obs_dtype)
            obs, _ = self.env.reset(seed=self.cfg.run.seed + 7919)
            for _ in range(max(p.init_steps, 1)):
                a = int(self.rng.integers(self.algo.n_actions))
                nxt, rew, term, trunc, _ = self.env.step(a)
                init.add(obs, a, float(rew), nxt, bool(term))
                obs = nxt if not (term or trunc) else self.env.reset()[0]
            sample = lambda: init.sample(p.score_batch).to(self.device)  # noqa: E731
        with unmasked(self.algo.q):
            for name, pw in self.pathways.items():
                result = pw.init((lambda n=name: losses[n](sample())) if sample else None)
                self.logger.pathway_event(self._event("init", name, result))
        self.initialised = True

    def _maybe_update_masks(self, *, episode_end: bool) -> None:
        """DAPD: re-score the dense network on the last ``--window`` transitions at episode ends (or every
        ``--mask-every`` steps) in warm-up. SET/RigL: every ΔT steps, drop and grow on the masked network's
        TD loss over a replay minibatch (RigL's grow gradient is dense by construction)."""
        p = self.cfg.pathway
        for name, pw in self.pathways.items():
            was_frozen = pw.frozen
            if pw.due(self.step, episode_end=episode_end) and len(self.replay) >= p.score_batch:
                losses = self.algo.losses()          # only when due: this runs at every environment step
                if getattr(pw.method, "data", "recent") == "replay":
                    result = pw.update(self.step, lambda n=name: losses[n](
                        self.replay.sample(p.score_batch).to(self.device)))
                else:
                    with unmasked(self.algo.q):
                        result = pw.update(self.step, lambda n=name: losses[n](self.replay.sample_recent(
                            p.score_batch, p.window).to(self.device)))
                self.logger.pathway_event(self._event("update", name, result))
            elif pw.frozen and not was_frozen:
                self._log_freeze(name, pw)

    # ---- evaluation ---------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        r, d = self.cfg.run, self.cfg.dqn
        rng = np.random.default_rng(r.seed + EVAL_SEED_OFFSET + self.step)
        returns, lengths = [], []
        for i in range(r.eval_episodes):
            obs, _ = self.eval_env.reset(seed=r.seed + EVAL_SEED_OFFSET + self.step + i)
            done, ret, n = False, 0.0, 0
            while not done:
                obs, reward, terminated, truncated, _ = self.eval_env.step(self.algo.act(obs, d.eval_epsilon, rng))
                ret, n = ret + float(reward), n + 1
                done = terminated or truncated
            returns.append(ret)
            lengths.append(n)
        a = np.asarray(returns)
        row = {"step": self.step, "return_mean": float(a.mean()), "return_std": float(a.std()),
               "return_min": float(a.min()), "return_max": float(a.max()), "length_mean": float(np.mean(lengths)),
               "phase": self.phase(), "actor_density": round(density(self.algo.q), 6),
               "critic_density": round(density(self.algo.q), 6), "wall_time": round(time.time(), 3),
               "cpu_seconds": round(self.cpu_before + self.meter.cpu_seconds(), 2), "energy_j": "",
               "energy_mode": self.meter.mode}
        self.last_eval, self._last_eval_row = row["return_mean"], row
        self.logger.evaluation(row)
        self._observe_return(row["return_mean"])
        return row

    # ---- checkpoints ----------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Never of non-finite weights; the log rows up to this step reach the disk first (a kill right after
        loses none of them), and the wall-time clock restarts."""
        r = self.cfg.run
        check_finite_weights(self.algo, self.step, self.run_dir)
        if self.logger is not None:
            self.logger.flush()
        self.clock.reset()
        while self.next_checkpoint <= self.step:
            self.next_checkpoint += r.checkpoint_every
        state = {"algo": self.algo.state_dict(), "algo_updates": self.algo.updates,
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "pathways": {k: p.state_dict() for k, p in self.pathways.items()},
                 "counters": {"step": self.step, "episodes": self.episodes, "initialised": self.initialised,
                              "last_eval": self.last_eval, "last_eval_row": self._last_eval_row,
                              "next_checkpoint": self.next_checkpoint,
                              "cpu_seconds": self.cpu_before + (self.meter.cpu_seconds() if self.meter else 0.0)},
                 "rng": rng_state(self.rng)}
        meta = {"neuropath": __version__, "env": r.env, "algo": "dqn", "pathway": self.cfg.pathway.pathway,
                "obs_shape": list(self.algo.obs_shape), "n_actions": self.algo.n_actions}
        self._saved_step = self.step
        return checkpoint.save(self.run_dir, self.step, state, replay=self.replay, meta=meta, keep=r.keep_checkpoints)

    def load_checkpoint(self, path: Path) -> None:
        state = checkpoint.load_state(path, map_location=self.device)
        checkpoint.restore(path, state, {"algo": self.algo, "optimizers": self.optimizers, "pathways": self.pathways},
                           also=lambda: self.replay.load(path / "replay.npy"))
        self.algo.updates = state["algo_updates"]
        c = state["counters"]
        self.step, self.episodes, self.initialised = c["step"], c["episodes"], c["initialised"]
        self.last_eval, self._last_eval_row = c["last_eval"], c["last_eval_row"]
        self.next_checkpoint, self.cpu_before = c["next_checkpoint"], c["cpu_seconds"]
        self._saved_step = self.step
        set_rng_state(state["rng"], self.rng)


class DQNPolicy(PredictsLikeSB3):
    """A DQN run's greedy policy for `neuropath eval` (``act_unit`` like `Policy`, SB3's ``predict``;
    stochastic = ε-greedy with the run's --eval-epsilon)."""

    def __init__(self, run_dir: Path) -> None:
        cfg = load_run_config(run_dir)
        path = checkpoint.latest(run_dir)
        meta = checkpoint.read_meta(path)
        self.algo = make_dqn(cfg, tuple(meta["obs_shape"]), int(meta["n_actions"]))
        try:
            self.algo.load_state_dict(checkpoint.load_state(path)["algo"])
        except (RuntimeError, KeyError) as exc:
            raise UsageError(f"checkpoint {str(path)!r} does not fit its own config: "
                             f"{str(exc).splitlines()[0]}") from None
        self.env_id, self.epsilon = meta["env"], cfg.dqn.eval_epsilon
        self.rng = np.random.default_rng(0)

    @property
    def density(self) -> float:
        return density(self.algo.q)

    def act_unit(self, observation: np.ndarray, deterministic: bool = True) -> int:
        return self.algo.act(observation, 0.0 if deterministic else self.epsilon, self.rng)


def make_dqn(cfg: Config, obs_shape: tuple[int, ...], n_actions: int) -> DQN:
    """The run's DQN: the torso its environment takes, its settings (one place for the trainer, the policy
    loader and the FLOP counter)."""
    d = cfg.dqn
    return DQN(tuple(obs_shape), n_actions,
               DQNConfig(lr=d.dqn_lr, gamma=cfg.sac.gamma, batch_size=d.dqn_batch_size,
                         target_every=d.dqn_target_every, huber=d.huber),
               torso=dqn_torso(cfg.run.env), mask_conv=d.mask_conv, hidden=tuple(d.dqn_hidden))
