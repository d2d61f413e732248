"""The on-policy loop (``neuropath train --algo ppo``): rollout → GAE → epochs of minibatch updates →
maybe change masks → evaluate → checkpoint.

Environments: ``--num-envs`` copies in one synchronous vector env (same-step autoreset) with
Gymnasium's vector wrappers for episode statistics and action clipping (continuous); observations are
normalised by running statistics (then clipped to ±10) and rewards scaled by the running std of the
discounted return (clipped to ±10), as CleanRL and SB3 run PPO on MuJoCo, with Gymnasium's
`RunningMeanStd` (its normalisation wrappers refuse same-step autoreset). The normalisation statistics are part of every
checkpoint; evaluation runs a separate raw environment whose observations are normalised with the
training statistics (frozen), and reports raw returns.

Pathways (DAPD and the static baselines; training/build.py): the first rollout is collected by the
untrained dense networks; the initial masks are scored on it with the PPO losses (the networks dense),
then the rollout's log-probabilities and values are recomputed under the masked networks before the
first update. During DAPD's warm-up the masks are re-scored after every rollout's update, each network
with its own loss on ``--score-batch`` samples of that rollout; the moving average (``--moving-average``),
the freeze threshold on the evaluation return (``--freeze-return``) and the freeze step are SAC's.

Checkpoints are written after a rollout's update; a resumed run starts new episodes there (the vector
env's mid-episode state is not saved), so it continues the run but not bit for bit.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ...algos.ppo import PPO, PPOConfig, RolloutBatch, gae
from ...envs.make import check_env_id, make_env
from ...errors import UsageError
from ...pathways import density
from .. import checkpoint
from ..build import build_pathways, use_sparse_execution
from ..config import Config, algo_settings
from ..evaluate import PredictsLikeSB3, eval_seed, run_episodes, summarise
from ..guards import check_finite_losses, check_finite_weights
from ..pathway_driver import PathwayDriver
from ..run import Run
from ..run_dir import latest_checkpoint

OBS_CLIP = 10.0
EPS = 1e-8


class PPOTrainer(Run):
    """One PPO run with pathways; ``PPOTrainer.resume(run_dir)`` continues one."""

    kind_name = "ppo"
    density_labels = {"actor_density": "actor", "critic_density": "value"}     # the critic is the value network

    def __init__(self, cfg: Config, *, _resume_from: Path | None = None) -> None:
        cfg.validate()
        r, g = cfg.run, cfg.ppo
        if r.algo != "ppo":
            raise UsageError("PPOTrainer needs --algo ppo")
        check_env_id(r.env)
        super().__init__(cfg, _resume_from)
        self.eval_env = make_env(r.env, actions="any")
        space = self.eval_env.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        obs_dim = self.eval_env.observation_space.shape[0]
        act_dim = int(space.n) if self.discrete else space.shape[0]
        self.algo = PPO(obs_dim, act_dim, algo_settings(PPOConfig, cfg, "ppo"), discrete=self.discrete)
        self.algo.to(self.device)
        self.optimizers = self.algo.make_optimizers()
        self.pathways = build_pathways(cfg, self.algo, self.optimizers)
        self.driver = PathwayDriver(cfg, self.algo, self.pathways, lambda: self.logger)
        self.sparse = use_sparse_execution(cfg, self.algo, self.device)
        self.envs = self._make_envs()
        self.batch = g.rollout_steps * g.num_envs
        self.iterations = math.ceil(r.steps / self.batch)
        self.iteration = 0
        self.initialised = not self.pathways
        self.next_eval = r.eval_every
        self.next_obs: np.ndarray | None = None
        self.next_done = np.zeros(g.num_envs, dtype=np.float32)

    def _make_envs(self) -> gym.vector.VectorEnv:
        """The training vector env. Normalisation is applied here in the loop with Gymnasium's
        `RunningMeanStd`, because its vector normalisation wrappers refuse same-step autoreset."""
        r, g = self.cfg.run, self.cfg.ppo
        from functools import partial

        from gymnasium.wrappers.utils import RunningMeanStd
        envs = gym.vector.SyncVectorEnv([partial(make_env, r.env, actions="any") for _ in range(g.num_envs)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
        if not self.discrete:
            envs = gym.wrappers.vector.ClipAction(envs)
        self.obs_rms = RunningMeanStd(shape=envs.single_observation_space.shape) if g.norm_obs else None
        self.ret_rms = RunningMeanStd(shape=()) if g.norm_reward else None
        self.discounted = np.zeros(g.num_envs)
        return envs

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        """Update the observation statistics with a training batch and normalise it (SB3's VecNormalize)."""
        if self.obs_rms is not None:
            self.obs_rms.update(obs)
        return self.normalise(obs)

    def _scale_rewards(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Divide by the running std of the discounted return, clipped to ±10 (SB3 / Gymnasium)."""
        if self.ret_rms is None:
            return reward
        self.discounted = self.discounted * self.cfg.sac.gamma + reward
        self.ret_rms.update(self.discounted)
        self.discounted[done] = 0.0
        return np.clip(reward / np.sqrt(self.ret_rms.var + EPS), -OBS_CLIP, OBS_CLIP)

    # ---- acting with the training statistics ------------------------------------------------------

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Observations already normalised (`_observe`) as a float tensor."""
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device)

    def normalise(self, obs: np.ndarray) -> np.ndarray:
        """A raw observation as the networks see it (the statistics as they are, not updated)."""
        if self.obs_rms is None:
            return obs
        return np.clip((obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + EPS), -OBS_CLIP, OBS_CLIP)

    # ---- the loop ----------------------------------------------------------------------------------

    def begin(self) -> None:
        if self.next_obs is None:
            self.next_obs = self._observe(self.envs.reset(seed=self.cfg.run.seed + 1000 * self.iteration)[0])

    def can_checkpoint(self) -> bool:
        return self.iteration > 0

    def advance(self) -> None:
        """One rollout and its update (evaluations fall inside the rollout when due), then a checkpoint if
        one is due."""
        self._iteration()
        if self.checkpoint_due() or self.step >= self.cfg.run.steps:
            self.save_checkpoint()

    def _iteration(self) -> None:
        g, algo = self.cfg.ppo, self.algo
        t0 = time.perf_counter()
        algo.set_lr(self.optimizers, 1.0 - self.iteration / self.iterations)
        rollout = self._collect()
        if not self.initialised:
            self._init_pathways(rollout)
        batch = self._advantages(rollout)
        metrics: dict[str, torch.Tensor] = {}
        size = len(batch.obs) // g.minibatches
        for _ in range(g.epochs):
            order = torch.randperm(len(batch.obs))
            for k in range(g.minibatches):
                idx = order[k * size:(k + 1) * size]
                metrics = algo.update(RolloutBatch(*(x[idx] for x in batch)), self.optimizers)
        self.iteration += 1
        self._maybe_update_masks(batch)
        sps = self.batch / max(time.perf_counter() - t0, 1e-9)
        check_finite_losses(metrics, self.step, self.run_dir)
        check_finite_weights(self.algo, self.step, self.run_dir)     # before the next rollout samples from them
        values = {k: float(v) for k, v in metrics.items()}
        values.update({"charts/SPS": sps, "charts/lr": self.optimizers["actor"].param_groups[0]["lr"],
                       "pathway/actor_density": density(algo.actor), "pathway/value_density": density(algo.value)})
        self.logger.scalars(self.step, values)
        self.logger.progress(self.step, {"phase": self.phase(),
                                         "eval": "-" if self.last_eval is None else f"{self.last_eval:.0f}"})

    def _collect(self) -> dict[str, torch.Tensor]:
        """One rollout of ``rollout_steps`` vector steps; evaluations fall inside it when due."""
        g, r = self.cfg.ppo, self.cfg.run
        T, N = g.rollout_steps, g.num_envs
        dev = self.device                       # the rollout lives where the updates run
        obs = torch.zeros(T, N, self.algo.obs_dim, device=dev)
        actions = torch.zeros(T, N, device=dev) if self.discrete else torch.zeros(T, N, self.algo.act_dim, device=dev)
        logprobs, values = torch.zeros(T, N, device=dev), torch.zeros(T, N, device=dev)
        rewards, dones = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
        for t in range(T):
            x = self._obs_tensor(self.next_obs)
            action, logprob, value = self.algo.step(x)
            obs[t], actions[t], logprobs[t], values[t] = x, action, logprob, value
            dones[t] = self.next_done
            a = action.cpu().numpy().astype(np.int64 if self.discrete else np.float32)
            raw_obs, reward, terminated, truncated, info = self.envs.step(a)
            done = terminated | truncated
            self.next_obs = self._observe(raw_obs)
            rewards[t] = self._scale_rewards(np.asarray(reward, np.float64), done)
            if self.cfg.ppo.bootstrap_truncated:
                rewards[t] += self._truncation_bonus(terminated, truncated, info)
            self.next_done = done.astype(np.float32)
            for i in np.flatnonzero(info.get("_episode", np.zeros(N, bool))):
                self.logger.episode(self.step + i + 1, float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))
            self.step += N
            for _ in range(N):
                self.logger.tick()
            if self.step >= self.next_eval or (self.step >= r.steps and t == T - 1):
                self.evaluate()
                while self.next_eval <= self.step:
                    self.next_eval += r.eval_every
        return {"obs": obs, "action": actions, "logprob": logprobs, "reward": torch.from_numpy(rewards).to(dev),
                "done": torch.from_numpy(dones).to(dev), "value": values}

    @torch.no_grad()
    def _truncation_bonus(self, terminated: np.ndarray, truncated: np.ndarray, info: dict) -> np.ndarray:
        """γ·V(final observation) where an episode was cut by its time limit (not where it terminated), else
        0: the return a time limit cuts off goes on in the value (Pardo et al. 2018; SB3 adds it to the scaled
        reward the same way). With same-step autoreset the final observation is ``info["final_obs"]``;
        it is normalised with the current statistics, without updating them."""
        bonus = np.zeros(len(truncated), np.float32)
        cut = np.flatnonzero(truncated & ~terminated)
        if len(cut):
            final = np.stack([info["final_obs"][i] for i in cut])
            value = self.algo.value(self._obs_tensor(self.normalise(final))).squeeze(-1)
            bonus[cut] = self.cfg.sac.gamma * value.cpu().numpy()
        return bonus

    @torch.no_grad()
    def _advantages(self, ro: dict[str, torch.Tensor]) -> RolloutBatch:
        last_value = self.algo.value(self._obs_tensor(self.next_obs)).squeeze(-1)
        adv, ret = gae(ro["reward"], ro["value"], ro["done"], last_value, torch.as_tensor(self.next_done, device=self.device),
                       self.cfg.sac.gamma, self.cfg.ppo.gae_lambda)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        return RolloutBatch(flat(ro["obs"]), flat(ro["action"]), flat(ro["logprob"]), flat(adv), flat(ret),
                            flat(ro["value"]))

    # ---- pathways -----------------------------------------------------------------------------------

    def _score_sample(self, batch: RolloutBatch) -> RolloutBatch:
        idx = torch.randperm(len(batch.obs))[:self.cfg.pathway.score_batch]
        return RolloutBatch(*(x[idx] for x in batch))

    def _init_pathways(self, ro: dict[str, torch.Tensor]) -> None:
        """Initial masks from the first rollout (dense networks), then the rollout re-evaluated
        under the masked policy so that the first update's ratios start at 1."""
        batch = self._advantages(ro)
        self.driver.init(self.step, lambda: self._score_sample(batch), self.algo.losses())
        with torch.no_grad():
            x = ro["obs"].reshape(-1, self.algo.obs_dim)
            a = ro["action"].reshape(-1) if self.discrete else ro["action"].reshape(-1, self.algo.act_dim)
            logprob, _ = self.algo.actor.log_prob_entropy(x, a)
            ro["logprob"] = logprob.reshape(ro["logprob"].shape)
            ro["value"] = self.algo.value(x).reshape(ro["value"].shape)
        self.initialised = True

    def _maybe_update_masks(self, batch: RolloutBatch) -> None:
        """In warm-up, after every rollout's update: each due network re-scored on samples of that rollout."""
        due = self.driver.due(self.step, episode_end=True)
        if due:
            self.driver.update(self.step, due, recent=lambda: self._score_sample(batch), losses=self.algo.losses)

    def phase(self) -> str:
        return self.driver.phase()

    # ---- evaluation -----------------------------------------------------------------------------

    def evaluation(self) -> dict[str, Any]:
        r = self.cfg.run
        returns, lengths = run_episodes(self.eval_env, lambda o: self._eval_action(o), r.eval_episodes,
                                        seed=eval_seed(r.seed, self.step))
        return {**summarise(returns, lengths), "phase": self.phase(),
                "actor_density": round(density(self.algo.actor), 6),
                "critic_density": round(density(self.algo.value), 6)}       # the value network: PPO's critic

    def after_evaluation(self, row: dict[str, Any]) -> None:
        self.driver.observe(self.step, row["return_mean"])

    def _eval_action(self, obs: np.ndarray) -> np.ndarray:
        a = self.algo.act(self.normalise(obs).astype(np.float32), deterministic=True)
        return int(a) if self.discrete else np.clip(a, -1.0, 1.0)

    # ---- checkpoints ----------------------------------------------------------------------------------

    def _norm_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, rms in (("obs", self.obs_rms), ("return", self.ret_rms)):
            if rms is not None:
                out[key] = {"mean": np.array(rms.mean), "var": np.array(rms.var), "count": float(rms.count)}
        return out

    def meta(self) -> dict[str, Any]:
        return {"env": self.cfg.run.env, "obs_dim": self.algo.obs_dim, "act_dim": self.algo.act_dim,
                "discrete": self.discrete, "hidden": self.cfg.ppo.ppo_hidden}

    def extra_counters(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "next_eval": self.next_eval}

    def load_counters(self, counters: dict[str, Any]) -> None:
        self.iteration, self.next_eval = counters["iteration"], counters["next_eval"]
        self.iterations = max(self.iterations, self.iteration)

    def extra_state(self) -> dict[str, Any]:
        return {"normalisation": self._norm_state()}

    def load_extra(self, state: dict[str, Any], path: Path) -> None:
        norm = state["normalisation"]
        for key, rms in (("obs", self.obs_rms), ("return", self.ret_rms)):
            if rms is not None and key in norm:
                rms.mean, rms.var, rms.count = norm[key]["mean"], norm[key]["var"], norm[key]["count"]


class PPOPolicy(PredictsLikeSB3):
    """A PPO run's policy for `neuropath eval` / `neuropath.load_policy`: the actor of the latest
    checkpoint with the observation statistics it was trained with (``act_unit`` like `Policy`,
    SB3's ``predict``)."""

    def __init__(self, run_dir: Path) -> None:
        saved = latest_checkpoint(run_dir)
        meta = saved.meta
        self.algo = PPO(meta["obs_dim"], meta["act_dim"], algo_settings(PPOConfig, saved.cfg, "ppo"),
                        discrete=bool(meta.get("discrete")))
        checkpoint.load_trained(self.algo, saved.state["algo"], saved.path)
        obs = saved.state["normalisation"].get("obs")
        self.mean, self.var = (obs["mean"], obs["var"]) if obs else (None, None)
        self.env_id, self.discrete = meta["env"], bool(meta.get("discrete"))
        if not self.discrete:
            env = gym.make(self.env_id)
            self.low, self.high = np.asarray(env.action_space.low), np.asarray(env.action_space.high)
            env.close()

    @property
    def density(self) -> float:
        return density(self.algo.actor)

    def act_unit(self, observation: np.ndarray, deterministic: bool = True):
        x = observation if self.mean is None else np.clip((observation - self.mean) / np.sqrt(self.var + EPS),
                                                         -OBS_CLIP, OBS_CLIP)
        a = self.algo.act(np.asarray(x, np.float32), deterministic)
        return int(a) if self.discrete else np.clip(a, -1.0, 1.0)
