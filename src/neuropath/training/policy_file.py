"""The one-file format of a SAC policy: the actor with its masks, the action bounds, the environment id.

It lives in ``training/`` because runs write it (a policy snapshot at every evaluation, which `neuropath
dataset make` draws its ``medium`` policy from) and `neuropath.Policy` reads it one layer up; before, the
loop imported it from ``policy.py`` and ``policy.py`` imported the loop's package: a circle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..algos.sac import Actor
from ..errors import UsageError


def save_actor(actor: Actor, low: np.ndarray, high: np.ndarray, env_id: str, path: str | Path) -> None:
    """One file holding a policy (`Policy.load` reads it): the actor with its masks, the action
    bounds, the env id. Written atomically (a temporary file, then renamed)."""
    import os
    net = actor.net
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    torch.save({"format": 1, "actor": actor.state_dict(), "env": env_id,
                "obs_dim": net[0].in_features, "act_dim": net[-1].out_features // 2,
                "hidden": [m.out_features for m in list(net)[:-1:2]],
                "low": np.asarray(low), "high": np.asarray(high)}, tmp)
    os.replace(tmp, path)


def read_actor(path: str | Path) -> tuple[Actor, np.ndarray, np.ndarray, str]:
    """``(actor, low, high, env_id)`` from a file `save_actor` wrote; `UsageError` if it is not one."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
        actor = Actor(data["obs_dim"], data["act_dim"], data["hidden"])
        actor.load_state_dict(data["actor"])
    except Exception as exc:  # noqa: BLE001 - a missing, cut or foreign file alike
        raise UsageError(f"cannot load policy {str(path)!r}: {type(exc).__name__}") from None
    return actor, data["low"], data["high"], data["env"]
