"""neuropath: energy-efficient reinforcement learning through neural pathways.

Python API (the CLI is a thin layer over it)::

    import neuropath as npth
    cfg = npth.load_preset("quickstart", seed=1)      # or npth.Config().set({...})
    trainer = npth.Trainer(cfg)                       # a new run directory under runs/; any kind of run
    trainer.train()
    policy = npth.load_policy(trainer.run_dir)        # SB3-style predict()
    action, _ = policy.predict(obs, deterministic=True)
"""

from ._version import __version__
from .errors import UsageError  # noqa: E402
from .training.config import Config, PathwayConfig, RunConfig  # noqa: E402
from .algos.sac import SACConfig  # noqa: E402
from .kinds import Trainer, train  # noqa: E402  (any kind of run: SAC, PPO, DQN, MT10, offline)
from .policy import Policy, evaluate, load_policy  # noqa: E402
from .experiments.presets import load_preset  # noqa: E402

__all__ = ["Config", "PathwayConfig", "Policy", "RunConfig", "SACConfig", "Trainer", "UsageError",
           "evaluate", "load_policy", "load_preset", "train", "__version__"]
