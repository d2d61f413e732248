"""Checkpoints: everything the next step depends on, written atomically.

``RUN/checkpoints/ckpt-<step>/`` holds ``state.pt`` (networks with masks, optimizers,
pathway state with score window and phase, counters, RNG states), ``replay.npy`` and
``meta.json``. It is written into a temporary folder, renamed into place, and only then is
``RUN/checkpoints/latest`` switched to it: a run killed mid-write leaves the previous
checkpoint intact. State dicts only, never pickled modules.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import RunFault, UsageError

FORMAT_VERSION = 1


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial(run_dir: Path) -> int:
    """Delete what a checkpoint write killed midway left (``checkpoints/.tmp-*``: with a 1M replay buffer,
    GBs). Call it only while holding the run (`run_lock`), when no other process can be writing one.
    Returns how many were removed."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return 0
    stale = list(root.glob(".tmp-*"))
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(stale)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for want of space (torch's zip writer says it in its own words)."""
    text = str(exc)
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        "No space left" in text or ("enforce fail" in text and "inline_container" in text)


def save(run_dir: Path, step: int, state: dict[str, Any], *, replay=None, meta: dict | None = None,
         keep: int = 2) -> Path:
    """Write checkpoint ``step``. A full disk ends in one `RunFault` line that says where, with the previous
    checkpoint intact and ``latest`` still pointing at it."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{step:09d}"
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=root))
        os.chmod(tmp, 0o777 & ~_umask())               # mkdtemp makes 0700; a checkpoint is an ordinary folder
        torch.save(state, tmp / "state.pt")
        if replay is not None:
            replay.save(tmp / "replay.npy")
        info = {"format": FORMAT_VERSION, "step": step, "time": time.time(),
                "torch": torch.__version__, **(meta or {})}
        (tmp / "meta.json").write_text(json.dumps(info, indent=2))
        for f in tmp.iterdir():                        # on disk before the rename makes them the checkpoint
            _fsync(f)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            pointer = root / "latest"
            kept = f"; the last good checkpoint is {root / pointer.read_text().strip()}" if pointer.is_file() else ""
            raise RunFault(f"the disk is full: checkpoint {final} could not be written (free space on the "
                           f"disk of {root}){kept}") from None
        raise
    try:
        _write_atomic(root / "latest", final.name)
    except OSError as exc:
        if is_disk_full(exc):
            raise RunFault(f"the disk is full: {root / 'latest'} could not be switched to {final.name} "
                           "(that checkpoint itself was written)") from None
        raise
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


def load_trained(module: torch.nn.Module, weights: dict[str, Any], path: Path, *, prefix: str = "") -> None:
    """Load a checkpoint's trained weights (its ``algo`` section; with ``prefix``, only the entries under it,
    the prefix stripped) into ``module`` built from the run's own config; a checkpoint that does not fit
    that config (edited by hand, written by another version) ends in one line."""
    if prefix:
        weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"checkpoint {str(path)!r} does not fit its own config: {first}") from None


def is_target(name: str) -> bool:
    """A target copy (SAC's critic_target, DQN's q_target, ...): it follows its online network's mask
    and has no schedule of its own, so it is not shown as a pathway."""
    return name.endswith("_target")


def network_names(state: dict) -> list[str]:
    """The trained, maskable networks of a checkpoint (SAC: actor, critic; PPO: actor, value; IQL:
    actor, critic, value; BCQ: actor, critic, vae; DQN: q), actor first; target copies left out."""
    names = {k.split(".")[0] for k in state["algo"] if k.endswith(".mask")}
    names = {n for n in names if not is_target(n)}
    return sorted(names, key=lambda n: (n != "actor", n))


def read_meta(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "meta.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"checkpoint {str(path)!r} has an unreadable meta.json") from None


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` at once: a temporary file, given an ordinary file's mode (``mkstemp``
    makes 0600), synced to disk, then renamed over ``path``, so that a power cut leaves the old file or the
    new one, never an empty one."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(Path(path), text)
