"""One process per run directory.

Two processes training into the same run directory (a second `--resume` while the first still
runs, two sweeps over one folder) would truncate each other's metrics and overwrite each other's
checkpoints. A training loop therefore holds an exclusive ``flock`` on ``RUN/.lock`` for as long
as it runs; a second one stops with one clear line before it writes anything. The kernel drops the
lock when the process ends, however it ends, so a killed run never leaves a stale lock behind.
(``flock`` is per host: runs spread by Ray over several machines are kept apart by the sweep's
scheduling, not by this lock.)
"""

from __future__ import annotations

import fcntl
import functools
import os
import warnings
from pathlib import Path
from typing import IO, Callable, TypeVar

from ..errors import UsageError

LOCK_NAME = ".lock"
_held: dict[Path, IO] = {}      # run directory → its open lock file, for the life of the process


F = TypeVar("F", bound=Callable)


def _refuse(run_dir: Path, pid: str) -> UsageError:
    return UsageError(f"run directory {str(run_dir)!r} is in use by another process"
                      f"{f' (pid {pid})' if pid.isdigit() else ''}; wait for it to finish or stop it")


def hold(run_dir: Path) -> None:
    """Take ``run_dir``'s lock for the rest of this process (again: a no-op), or raise a
    `UsageError` naming the process that holds it."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    f = open(run_dir / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        raise _refuse(run_dir, pid) from None
    except OSError as exc:      # a filesystem without locks (some network mounts): train unguarded
        warnings.warn(f"cannot lock {run_dir} ({exc.strerror}); nothing stops a second process training there")
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _held[run_dir] = f


def release(run_dir: Path) -> None:
    """Give the lock back before the process ends (a loop run twice in one process, tests)."""
    f = _held.pop(Path(run_dir).resolve(), None)
    if f is not None:
        f.close()           # closing the only descriptor drops the flock (and works where flock failed)


def holder(run_dir: Path) -> str | None:
    """The pid (as written, possibly empty) of the process that trains into ``run_dir`` now, or
    None when no process does."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return str(os.getpid())
    path = run_dir / LOCK_NAME
    if not path.is_file():
        return None
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip()
        except OSError:         # no locks on this filesystem: nobody can be seen holding it
            return None
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def in_use(run_dir: Path) -> bool:
    """Whether a process (this one included) trains into ``run_dir`` now."""
    return holder(run_dir) is not None


def ensure_free(run_dir: Path) -> None:
    """Raise the one-line `UsageError` of `hold` if a process trains into ``run_dir`` now: checked
    before a resume reads the run, so that it never loads a checkpoint that is being replaced."""
    pid = holder(run_dir)
    if pid is not None:
        raise _refuse(Path(run_dir).resolve(), pid)


def locked(train: F) -> F:
    """Decorate a trainer's ``train()``: the run directory (``self.run_dir``) is held while it runs."""
    @functools.wraps(train)
    def wrapper(self, *args, **kwargs):
        hold(self.run_dir)
        from .checkpoint import remove_partial      # held: a half-written checkpoint is a killed writer's
        remove_partial(self.run_dir)
        try:
            return train(self, *args, **kwargs)
        finally:
            release(self.run_dir)
    return wrapper  # type: ignore[return-value]
