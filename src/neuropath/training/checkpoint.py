"""Checkpoints: everything the next step depends on, written atomically.

``RUN/checkpoints/ckpt-<step>/`` holds ``state.pt`` (networks with masks, optimizers,
pathway state with score window and phase, counters, RNG states), ``replay.npy`` and
``meta.json``. It is written into a temporary folder, renamed into place, and only then is
``RUN/checkpoints/latest`` switched to it: a run killed mid-write leaves the previous
checkpoint intact. State dicts only, never pickled modules.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError

FORMAT_VERSION = 1


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save(run_dir: Path, step: int, state: dict[str, Any], *, replay=None, meta: dict | None = None,
         keep: int = 2) -> Path:
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{step:09d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=root))
    try:
        torch.save(state, tmp / "state.pt")
        if replay is not None:
            replay.save(tmp / "replay.npy")
        info = {"format": FORMAT_VERSION, "step": step, "time": time.time(),
                "torch": torch.__version__, **(meta or {})}
        (tmp / "meta.json").write_text(json.dumps(info, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_atomic(root / "latest", final.name)
    for old in sorted(p for p in root.glob("ckpt-*") if p != final)[:-max(keep - 1, 0) or None]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path:
    """The newest complete checkpoint of a run, or a `UsageError` naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run directory {str(run_dir)!r} does not exist")
    pointer = checkpoint_root(run_dir) / "latest"
    if not pointer.is_file():
        raise UsageError(f"{str(run_dir)!r} has no checkpoint (no checkpoints/latest); "
                         "is it a neuropath run that got past its first checkpoint?")
    path = checkpoint_root(run_dir) / pointer.read_text().strip()
    if not (path / "state.pt").is_file() or not (path / "meta.json").is_file():
        raise UsageError(f"checkpoint {str(path)!r} is incomplete or missing")
    return path


def load_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return torch.load(Path(path) / "state.pt", map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a corrupt checkpoint
        raise UsageError(f"checkpoint {str(path)!r} is corrupt: {type(exc).__name__}") from None


def restore(path: Path, state: dict[str, Any], parts: dict[str, Any], also=None) -> None:
    """Load ``state[section]`` into ``parts[section]`` (anything with ``load_state_dict``), or, where that
    is a dict, ``state[section][key]`` into each ``parts[section][key]``; then ``also()`` (the replay, say).
    A checkpoint of another shape ends in one line instead of a traceback."""
    try:
        for section, target in parts.items():
            if isinstance(target, dict):
                for key, obj in target.items():
                    obj.load_state_dict(state[section][key])
            else:
                target.load_state_dict(state[section])
        if also is not None:
            also()
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"checkpoint {str(path)!r} does not fit this run's networks: {first}") from None


def read_meta(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "meta.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"checkpoint {str(path)!r} has an unreadable meta.json") from None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(Path(path), text)
