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

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...algos.dqn import DQN, DQNConfig, linear_epsilon
from ...data.frame_replay import FrameReplay
from ...data.image_replay import ImageReplay
from ...envs.pixels import check_dqn_env, dqn_torso, is_atari, make_dqn_env
from ...errors import UsageError
from ...pathways import density
from .. import checkpoint
from ..build import build_pathways, check_reachable, needs_init_data, use_sparse_execution
from ..config import Config, algo_settings
from ..evaluate import PredictsLikeSB3, eval_seed, summarise
from ..guards import check_finite_losses
from ..logging import EVAL_FIELDS
from ..pathway_driver import PathwayDriver
from ..run import EpisodicRun
from ..run_dir import latest_checkpoint


DQN_FIELDS = [f for f in EVAL_FIELDS if f not in ("actor_density", "critic_density")]
DQN_FIELDS.insert(EVAL_FIELDS.index("actor_density"), "q_density")
"""DQN's metrics.csv: one network, so one density column (``q_density``) where SAC has actor and critic"""


class DQNTrainer(EpisodicRun):
    """One DQN run with pathways; ``DQNTrainer.resume(run_dir)`` continues one."""

    fields = DQN_FIELDS
    kind_name = "dqn"
    density_labels = {"q_density": "q"}

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        cfg.validate()
        r = cfg.run
        if r.algo != "dqn":
            raise UsageError("DQNTrainer needs --algo dqn")
        check_dqn_env(r.env)
        super().__init__(cfg, _resume_from)
        self.env = make_dqn_env(r.env)
        self.eval_env = make_dqn_env(r.env)
        self.atari = is_atari(r.env)
        shape = self.env.observation_space.shape
        self.obs_dtype = self.env.observation_space.dtype
        self.algo = make_dqn(cfg, shape, int(self.env.action_space.n)).to(self.device)
        check_reachable(cfg, self.algo)
        self.optimizers = self.algo.make_optimizers()
        self.pathways = build_pathways(cfg, self.algo, self.optimizers)
        self.driver = PathwayDriver(cfg, self.algo, self.pathways, lambda: self.logger, unmask=self.algo.q)
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)
        # Atari: each frame once, a ring of --replay-size (fixed, so a resumed run with more steps fits);
        # MinAtar: whole observations, min(--replay-size, --steps).
        self.replay = FrameReplay(shape, r.replay_size) if self.atari else \
            ImageReplay(shape, min(r.replay_size, r.steps), self.obs_dtype)
        self.first = True
        self.rng = np.random.default_rng(r.seed)
        self.initialised = not self.pathways
        self.obs: np.ndarray | None = None
        self.lives = 0
        self._metrics: dict[str, torch.Tensor] = {}

    def epsilon(self) -> float:
        d = self.cfg.dqn
        return linear_epsilon(self.step, d.eps_start, d.eps_end, d.eps_decay_steps)

    # ---- the loop -----------------------------------------------------------------------------

    def begin(self) -> None:
        if not self.initialised:
            self._init_pathways()
        if self.obs is None:
            self._reset(seed=self.cfg.run.seed + self.episodes)

    def advance(self) -> dict[str, Any]:
        """One environment step: ε-greedy act, store, an update every ``--train-every`` steps, the mask
        update and evaluation when due, a checkpoint at the first episode end past its step."""
        r, d = self.cfg.run, self.cfg.dqn
        replay = self.replay
        action = self.algo.act(self.obs, self.epsilon(), self.rng)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        lives = int(info.get("lives", 0))
        life_lost = self.atari and lives < self.lives
        self.lives = lives
        stored = float(np.sign(reward)) if self.atari else float(reward)
        replay.add(self.obs, action, stored, next_obs, bool(terminated or life_lost), first=self.first)
        self.first = False
        self.ep_return += float(reward)
        self.ep_len += 1
        self.step += 1
        self.logger.tick()
        self.obs = next_obs
        done = bool(terminated or truncated)
        if self.step > r.seed_steps and self.step % d.train_every == 0 and len(replay) >= d.dqn_batch_size:
            self._metrics = self.algo.update(replay.sample(d.dqn_batch_size).to(self.device), self.optimizers)
        before, after = self.evaluation_sides()          # of the mask update, as in the SAC loop
        if before:
            self.evaluate()
        if self.pathways:
            self._maybe_update_masks(episode_end=done)
        if after:
            self.evaluate()
        if self.step % r.log_every == 0:
            check_finite_losses(self._metrics, self.step, self.run_dir)
            self.logger.scalars(self.step, {**{k: float(v) for k, v in self._metrics.items()},
                                            "charts/SPS": self.steps_per_second(),
                                            "charts/epsilon": self.epsilon(),
                                            "pathway/q_density": density(self.algo.q)})
            self.logger.progress(self.step, self.postfix())
        if done:
            self.end_episode()
            self._reset(seed=r.seed + self.episodes)
        return {"done": done}

    def postfix(self) -> dict[str, str]:
        return {"phase": self.phase(), "eval": "-" if self.last_eval is None else f"{self.last_eval:.1f}"}

    def _reset(self, seed: int | None = None) -> None:
        self.obs, info = self.env.reset(seed=seed)
        self.first = True
        self.lives = int(info.get("lives", 0))
        self.ep_return, self.ep_len = 0.0, 0

    # ---- pathways -----------------------------------------------------------------------------

    def _init_pathways(self) -> None:
        """Initial masks: DAPD and static SNIP score the dense untrained Q-network on ``--init-steps``
        transitions of the ε=1 policy (dropped afterwards)."""
        p = self.cfg.pathway
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
        self.driver.init(self.step, sample, self.algo.losses())
        self.initialised = True

    def _maybe_update_masks(self, *, episode_end: bool) -> None:
        """DAPD: re-score the dense network on the last ``--window`` transitions at episode ends (or every
        ``--mask-every`` steps) in warm-up. SET/RigL: every ΔT steps, drop and grow on the masked network's
        TD loss over a replay minibatch (RigL's grow gradient is dense by construction). Losses are built only
        when something is due: this runs at every environment step."""
        p, replay = self.cfg.pathway, self.replay
        due = self.driver.due(self.step, episode_end=episode_end)
        if due and len(replay) >= p.score_batch:
            self.driver.update(self.step, due, losses=self.algo.losses,
                               recent=lambda: replay.sample_recent(p.score_batch, p.window).to(self.device),
                               replay=lambda: replay.sample(p.score_batch).to(self.device))

    def phase(self) -> str:
        return self.driver.phase()

    # ---- evaluation ---------------------------------------------------------------------------------

    def evaluation(self) -> dict[str, Any]:
        """``--eval-episodes`` whole games, ε-greedy with ``--eval-epsilon`` (its draws seeded too)."""
        r, d = self.cfg.run, self.cfg.dqn
        seed = eval_seed(r.seed, self.step)
        rng = np.random.default_rng(seed)
        returns, lengths = [], []
        for i in range(r.eval_episodes):
            obs, _ = self.eval_env.reset(seed=seed + i)
            done, ret, n = False, 0.0, 0
            while not done:
                obs, reward, terminated, truncated, _ = self.eval_env.step(self.algo.act(obs, d.eval_epsilon, rng))
                ret, n = ret + float(reward), n + 1
                done = terminated or truncated
            returns.append(ret)
            lengths.append(n)
        return {**summarise(returns, lengths), "phase": self.phase(), "q_density": round(density(self.algo.q), 6)}

    def after_evaluation(self, row: dict[str, Any]) -> None:
        self.driver.observe(self.step, row["return_mean"])

    # ---- checkpoints: what DQN keeps beyond the common state -------------------------------------

    def meta(self) -> dict[str, Any]:
        return {"env": self.cfg.run.env, "obs_shape": list(self.algo.obs_shape), "n_actions": self.algo.n_actions}

    def checkpointed_replay(self):
        return self.replay


class DQNPolicy(PredictsLikeSB3):
    """A DQN run's greedy policy for `neuropath eval` (``act_unit`` like `Policy`, SB3's ``predict``;
    stochastic = ε-greedy with the run's --eval-epsilon)."""

    def __init__(self, run_dir: Path) -> None:
        saved = latest_checkpoint(run_dir)
        meta = saved.meta
        self.algo = make_dqn(saved.cfg, tuple(meta["obs_shape"]), int(meta["n_actions"]))
        checkpoint.load_trained(self.algo, saved.state["algo"], saved.path)
        self.env_id, self.epsilon = meta["env"], saved.cfg.dqn.eval_epsilon
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
               algo_settings(DQNConfig, cfg, "dqn"),
               torso=dqn_torso(cfg.run.env), mask_conv=d.mask_conv, hidden=tuple(d.dqn_hidden))
