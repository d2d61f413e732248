"""Stable-Baselines3 reference runs that `neuropath report` reads beside neuropath's own: PPO on MuJoCo and
DQN on MinAtar with the settings of neuropath's presets, evaluated like neuropath evaluates.

    python benchmarks/sb3_reference.py --algo ppo --env Hopper-v5 --steps 1000000 --seeds 0 1 2 --out SWEEP
    python benchmarks/sb3_reference.py --algo dqn --env MinAtar/Breakout-v1 --steps 500000 --seeds 0 1 2 --out SWEEP
    neuropath report SWEEP                  # SB3 appears as the method "sb3" in the "ENV (ppo)" / "(dqn)" groups

Each run is a folder ``OUT/runs/<env>__sb3__s<seed>/`` holding what the report reads (``config.yaml`` with
``pathway: sb3``, ``metrics.csv`` with neuropath's columns) and SB3's own checkpoint (``sb3/``, saved at every
evaluation): a cut run continues from its last evaluation, a finished one is skipped.

Settings, as neuropath's ``*-ppo-dense`` / ``minatar-*-dense`` presets:
- PPO: separate 64×64 tanh actor and value networks (``--hidden``), state-independent log-std, 2048-step
  rollouts, 10 epochs, batch 64 (32 minibatches), lr 3e-4 annealed linearly, GAE λ 0.95, clip 0.2, value
  coefficient 0.5, gradient-norm clip 0.5, observation and reward normalisation (VecNormalize). Evaluation:
  deterministic (the Gaussian's mean) on observations normalised by the training statistics. Two things SB3
  does that neuropath's defaults (CleanRL's) do not, and that no SB3 setting turns off or on here: SB3 adds
  γ·V(final observation) where a time limit cut an episode, and leaves the value loss unclipped
  (neuropath: `--bootstrap-truncated`, `--no-clip-value`).
- DQN (MinAtar): Young & Tian's torso (16 3×3 filters, a 128-unit layer) as SB3's features extractor, Adam
  1e-4, batch 32, replay 100k, learning starts 5000, an update every step, target every 1000 updates, ε 1 →
  0.1 over 100k steps. Evaluation: ε = 0.05, as neuropath's DQN evaluation.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

FIELDS = ["step", "return_mean", "return_std", "return_min", "return_max", "length_mean"]


def run_dir(out: Path, env: str, seed: int) -> Path:
    return out / "runs" / f"{env.replace('/', '_')}__sb3__s{seed}"


def _evaluated(path: Path) -> list[dict]:
    if not (path / "metrics.csv").is_file():
        return []
    return list(csv.DictReader((path / "metrics.csv").open()))


def make_model(algo: str, env_id: str, seed: int, steps: int, hidden: list[int], path: Path):
    """SB3's model and its training environment; loaded from ``path/sb3`` where a checkpoint exists."""
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    saved = path / "sb3" / "model.zip"
    if algo == "ppo":
        env = make_vec_env(env_id, n_envs=1, seed=seed)
        if saved.is_file():
            env = VecNormalize.load(str(path / "sb3" / "vecnormalize.pkl"), env)
            return PPO.load(str(saved), env=env, device="cpu"), env
        env = VecNormalize(env, gamma=0.99)
        model = PPO("MlpPolicy", env, learning_rate=3e-4, n_steps=2048, batch_size=64,
                    n_epochs=10, gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5,
                    max_grad_norm=0.5, seed=seed, device="cpu", verbose=0,
                    policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": torch.nn.Tanh})
        return model, env
    sys.path.insert(0, str(Path(__file__).parent))
    from dqn_throughput import _minatar_extractor

    from neuropath.envs.pixels import make_image_env
    env = make_image_env(env_id)
    if saved.is_file():
        model = DQN.load(str(saved), env=env, device="cpu")
        model.load_replay_buffer(str(path / "sb3" / "replay.pkl"))
        return model, env
    model = DQN("MlpPolicy", env, learning_rate=1e-4, buffer_size=100_000, learning_starts=5000, batch_size=32,
                gamma=0.99, train_freq=1, gradient_steps=1, target_update_interval=1000,
                exploration_fraction=100_000 / steps, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                seed=seed, device="cpu", verbose=0,
                policy_kwargs={"features_extractor_class": _minatar_extractor(), "net_arch": [],
                               "normalize_images": False})
    return model, env


def set_schedules(algo: str, model, start: int, end: int, steps: int) -> None:
    """Anneal over the whole run although it is learned in chunks: SB3 computes its progress per ``learn`` call
    (1 − t / (start + chunk) with t the global step), so the schedules are rewritten for each chunk as
    functions of the global step (plain numbers in the closure, so SB3 can still save the model)."""
    if algo == "ppo":        # lr 3e-4 → 0 over the run, as neuropath's --anneal-lr
        model.lr_schedule = lambda remaining: 3e-4 * max(0.0, 1.0 - (1.0 - remaining) * end / steps)
    else:                    # ε 1 → 0.1 over the first 100k steps
        model.exploration_schedule = lambda remaining: max(0.1, 1.0 - 0.9 * (1.0 - remaining) * end / 100_000)


def evaluate(algo: str, env_id: str, model, train_env, episodes: int, seed: int) -> dict:
    """Mean return over ``episodes`` evaluation episodes on a separate environment."""
    import gymnasium as gym
    rng = np.random.default_rng(seed)
    if algo == "ppo":
        env = gym.make(env_id)
    else:
        from neuropath.envs.pixels import make_image_env
        env = make_image_env(env_id)
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, ret, n = False, 0.0, 0
        while not done:
            if algo == "ppo":
                action, _ = model.predict(train_env.normalize_obs(obs[None]), deterministic=True)
                action = action[0]
            elif rng.random() < 0.05:
                action = env.action_space.sample()
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            ret, n, done = ret + float(reward), n + 1, terminated or truncated
        returns.append(ret)
        lengths.append(n)
    env.close()
    a = np.asarray(returns)
    return {"return_mean": a.mean(), "return_std": a.std(), "return_min": a.min(), "return_max": a.max(),
            "length_mean": float(np.mean(lengths))}


def run(args, seed: int) -> None:
    path = run_dir(Path(args.out), args.env, seed)
    rows = _evaluated(path)
    done = int(rows[-1]["step"]) if rows else 0
    if done >= args.steps:
        print(f"{path.name}: finished")
        return
    path.mkdir(parents=True, exist_ok=True)
    config = {"run": {"env": args.env, "algo": args.algo, "steps": args.steps, "seed": seed,
                      "eval_every": args.eval_every, "eval_episodes": args.eval_episodes},
              "pathway": {"pathway": "sb3", "keep_ratio": 1.0},
              "sb3": {"hidden": args.hidden if args.algo == "ppo" else "minatar torso"}}
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.set_num_threads(1)
    model, env = make_model(args.algo, args.env, seed, args.steps, args.hidden, path)
    new = not (path / "metrics.csv").is_file()
    with (path / "metrics.csv").open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        while done < args.steps:
            chunk = min(args.eval_every, args.steps - done)
            set_schedules(args.algo, model, done, done + chunk, args.steps)
            model.learn(chunk, reset_num_timesteps=False)
            done = int(model.num_timesteps)     # PPO ends on a whole rollout: 1M steps are 1,001,472, as neuropath's
            row = evaluate(args.algo, args.env, model, env, args.eval_episodes, 10_000 + seed * 1000 + done)
            (path / "sb3").mkdir(exist_ok=True)
            model.save(str(path / "sb3" / "model.zip"))
            if args.algo == "ppo":
                env.save(str(path / "sb3" / "vecnormalize.pkl"))
            else:
                model.save_replay_buffer(str(path / "sb3" / "replay.pkl"))
            writer.writerow({"step": done, **{k: f"{v:.4f}" for k, v in row.items()}})
            f.flush()
            print(f"{path.name}: step {done}: eval return {row['return_mean']:.1f}", flush=True)


def sweep_protocol(out: Path, algo: str, env: str) -> dict[str, int]:
    """The evaluation cadence and episode count of the neuropath runs in the sweep at ``out`` (same algo and
    environment), so that "mean of the last 10 evaluations" means the same span for SB3 as for them."""
    try:
        runs = yaml.safe_load((out / "sweep.yaml").read_text())["runs"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    for r in runs:
        s = r.get("settings", {})
        if s.get("env") == env and s.get("algo") == algo:
            return {k: int(s[k]) for k in ("eval_every", "eval_episodes") if k in s}
    return {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=["ppo", "dqn"], required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", required=True, help="a sweep folder (runs go to OUT/runs/)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="default: that of OUT's neuropath runs of this algo and env (OUT/sweep.yaml), "
                        "else 10240 (ppo), 25000 (dqn), as the presets")
    p.add_argument("--eval-episodes", type=int, default=None, help="default: as --eval-every's, else 10")
    p.add_argument("--hidden", nargs="+", type=int, default=[64, 64], help="ppo: hidden widths")
    args = p.parse_args()
    protocol = sweep_protocol(Path(args.out), args.algo, args.env)
    given = (args.eval_every, args.eval_episodes)
    args.eval_every = args.eval_every or protocol.get("eval_every") or (10240 if args.algo == "ppo" else 25000)
    args.eval_episodes = args.eval_episodes or protocol.get("eval_episodes") or 10
    print(f"evaluation every {args.eval_every} steps, {args.eval_episodes} episodes"
          + (" (as the sweep's runs)" if protocol and None in given else ""), flush=True)
    for seed in args.seeds:
        run(args, seed)


if __name__ == "__main__":
    main()
