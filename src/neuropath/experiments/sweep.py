"""``neuropath sweep``: a grid of runs (environments × methods × keep ratios × seeds).

A sweep folder holds ``sweep.yaml`` (every run's name and settings), ``runs/<name>/`` (one
ordinary run directory each) and ``logs/<name>.log``. Running the sweep again does only what
is missing: finished runs are skipped, interrupted ones resumed from their checkpoint, and a
run that died before its first checkpoint is moved aside (never deleted) and started again.
Adding environments, methods or seeds to an existing sweep adds runs; changing the settings
of an existing run is refused.

Each run is its own ``neuropath train`` process with one torch thread (``--threads N``: N, for
a machine with fewer runs left than cores, or runs that must each finish sooner). Locally they run
``--jobs`` at a time; with ``--ray ADDRESS`` each is a Ray task (``--threads`` CPUs) on the cluster,
which must see the sweep folder at the same path (a shared filesystem; paths are made
absolute). ``--ray local`` starts a Ray instance here with ``--jobs`` CPUs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import yaml

from ..envs.make import check_env_id
from ..errors import UsageError
from ..training.config import PATHWAYS, VARIANTS, Config
from ..training.logging import read_csv
from ..training.run_lock import in_use

# Flags a sweep sets itself: a user setting for them would be overwritten or break the layout.
PYTHON = "{python}"        # replaced by the executing machine's interpreter
RESERVED = {"env", "pathway", "keep_ratio", "seed", "steps", "run_dir", "threads", "progress"}
SCORED_METHODS = ("dapd", "static")
"""the grid methods that score their pathway, so that ``METHOD+SCORE`` is meaningful"""


@dataclass
class RunSpec:
    name: str
    settings: dict[str, object]


@dataclass
class Grid:
    """The product of environments × methods × keep ratios × seeds, at one step budget.

    ``settings`` are extra ``KEY=VALUE`` settings for every run, or ``SCOPE:KEY=VALUE`` for
    the runs of one method or environment only (``dapd:freeze_step=60000``,
    ``Hopper-v5:freeze_return=1500``).
    """
    envs: list[str]
    methods: list[str]
    keep: list[float]
    seeds: list[int]
    steps: int
    settings: list[str] = field(default_factory=list)

    def validate(self) -> "Grid":
        for name, values in (("--envs", self.envs), ("--methods", self.methods), ("--keep", self.keep),
                             ("--seeds", self.seeds)):
            if not values:
                raise UsageError(f"{name} needs at least one value")
        for m in self.methods:
            split_method(m)
            method_variants(m)
        for e in self.envs:
            check_env_id(e)
        for k in self.keep:
            if not 0.0 < k <= 1.0:
                raise UsageError(f"--keep values must be in (0, 1], got {k}")
        if self.steps < 1:
            raise UsageError(f"--steps must be a positive number, got {self.steps}")
        for spec in self.runs():                   # every run's config must be valid up front
            Config().set(spec.settings).validate()
        return self

    def _scoped(self, env: str, method: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.settings:
            scope, assignment = "", item
            if ":" in item and item.index(":") < item.find("="):
                scope, assignment = item.split(":", 1)
            key, eq, value = assignment.partition("=")
            if not eq or not key:
                raise UsageError(f"--set expects KEY=VALUE or SCOPE:KEY=VALUE, got {item!r}")
            key = key.strip().replace("-", "_")
            if key in RESERVED:
                raise UsageError(f"--set {key}: the sweep sets it itself (use --envs/--methods/--keep/--seeds/--steps)")
            if scope and scope not in PATHWAYS and scope not in self.methods and scope not in gym.registry:
                raise UsageError(f"--set scope {scope!r} is neither a method nor an environment id")
            if not scope or scope in (env, method, split_method(method)[0]):
                out[key] = value.strip()
        return out

    def runs(self) -> list[RunSpec]:
        """Seeds outermost, so that a partial sweep has every method at the first seeds."""
        out, seen = [], set()
        for seed in self.seeds:
            for env in self.envs:
                for method in self.methods:
                    for keep in ([1.0] if method == "dense" else self.keep):
                        name = run_name(env, method, keep, seed)
                        if name in seen:
                            continue
                        seen.add(name)
                        pathway, score = split_method(method)
                        out.append(RunSpec(name, {"env": env, "pathway": pathway, "keep_ratio": keep,
                                                  "seed": seed, "steps": self.steps,
                                                  **({"score": score} if score else {}),
                                                  **method_variants(method),
                                                  **self._scoped(env, method)}))
        return out


def method_variants(method: str) -> dict[str, object]:
    """The settings of the named variants after ``@`` in a grid method (``dapd@authors``: DAPD as the
    authors' code runs it; ``dapd@own-age``; ``dapd@authors@own-age``), in order, later ones winning."""
    base, *names = method.split("@")
    if names and base.partition("+")[0] != "dapd":
        raise UsageError(f"method {method!r}: only dapd takes a variant (@{', @'.join(VARIANTS)})")
    out: dict[str, object] = {}
    for name in names:
        if name not in VARIANTS:
            raise UsageError(f"method {method!r}: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        out.update(VARIANTS[name])
    return out


def split_method(method: str) -> tuple[str, str | None]:
    """A grid method: a pathway method (``dapd``), or one that scores with its score after a ``+``
    (``dapd+grasp``, ``static+synflow``: the score ablation), either with named variants after ``@``
    (`method_variants`)."""
    from ..pathways.scores import SCORES
    base, plus, score = method.split("@")[0].partition("+")
    if base not in PATHWAYS:
        raise UsageError(f"unknown method {base!r} in the sweep grid; allowed: {', '.join(PATHWAYS)} "
                         f"(dapd and static also as METHOD+SCORE, e.g. dapd+grasp)")
    if plus and base not in SCORED_METHODS:
        raise UsageError(f"method {method!r}: only {' and '.join(SCORED_METHODS)} take a score (+SCORE)")
    if plus and score not in SCORES:
        raise UsageError(f"method {method!r}: unknown score {score!r}; known: {', '.join(SCORES)}")
    return base, (score or None)


def run_name(env: str, method: str, keep: float, seed: int) -> str:
    safe_env = env.replace("/", "_")
    return f"{safe_env}__{method}__keep{keep:g}__s{seed}"


# ---- the sweep folder --------------------------------------------------------------------

def merge_into(sweep_dir: Path, grid: Grid | None, *, write: bool = True) -> list[RunSpec]:
    """Record ``grid``'s runs in ``sweep.yaml`` (adding to what is there) and return all runs;
    ``write=False`` only says what the result would be."""
    path = sweep_dir / "sweep.yaml"
    known: dict[str, dict] = {}
    if path.is_file():
        try:
            known = {r["name"]: r["settings"] for r in yaml.safe_load(path.read_text())["runs"]}
        except Exception:  # noqa: BLE001 - any unreadable file is corrupt
            raise UsageError(f"{str(path)!r} is corrupt; move it away to start a new sweep there") from None
    elif grid is None:
        raise UsageError(f"{str(sweep_dir)!r} is not a sweep folder (no sweep.yaml); give a grid with --envs ...")
    elif write and sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise UsageError(f"{str(sweep_dir)!r} exists, is not empty and holds no sweep.yaml; pick another --out")
    if grid is not None:
        for spec in grid.runs():
            old = known.get(spec.name)
            if old is not None and _normal(old) != _normal(spec.settings):
                raise UsageError(f"run {spec.name} is already in this sweep with other settings; "
                                 "use another sweep folder to change settings")
            known[spec.name] = spec.settings
    if grid is not None and write:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump({"runs": [{"name": n, "settings": s} for n, s in known.items()]}, sort_keys=False)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return [RunSpec(n, s) for n, s in known.items()]


def _normal(settings: dict) -> dict[str, str]:
    return {k: str(v) for k, v in settings.items()}


def status(run_dir: Path, steps: int) -> str:
    """finished | running (a process on this machine trains it now) | resumable | broken (started,
    no checkpoint) | new."""
    rows = read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    if rows and int(rows[-1]["step"]) >= steps:
        return "finished"
    if in_use(run_dir):
        return "running"
    if (run_dir / "checkpoints" / "latest").is_file():
        return "resumable"
    return "broken" if run_dir.exists() else "new"


def command(sweep_dir: Path, spec: RunSpec, state: str | None = None, *, threads: int = 1) -> list[str]:
    """The ``neuropath train`` command that starts or continues ``spec`` (``state``: its `status`, if
    the caller has just read it) with ``threads`` torch threads."""
    run_dir = sweep_dir / "runs" / spec.name
    base = [PYTHON, "-m", "neuropath.cli", "train"]
    state = state or status(run_dir, int(spec.settings["steps"]))
    if state == "resumable":
        return base + ["--resume", str(run_dir), "--steps", str(spec.settings["steps"]), "--threads",
                       str(threads), "--no-progress"]
    if state == "broken":                     # died before its first checkpoint: keep it aside
        n = 1
        while (aside := run_dir.with_name(f"{spec.name}.incomplete-{n}")).exists():
            n += 1
        shutil.move(str(run_dir), str(aside))
    return base + _flags(spec.settings) + ["--run-dir", str(run_dir), "--threads", str(threads), "--no-progress"]


def _flags(settings: dict) -> list[str]:
    """Command-line flags of a run's settings; a yes/no setting is ``--key`` or ``--no-key`` (argparse's
    BooleanOptionalAction takes no value)."""
    from ..training.config import Config, _coerce

    fields = Config.fields()
    flags = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        field = fields[key][1] if key in fields else None
        if field is not None and str(field.type) == "bool":       # the config's own yes/no parsing
            flags.append(flag if _coerce(key, field, value) else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


# ---- executing: local processes or Ray tasks -----------------------------------------------

_RUNNING: set[subprocess.Popen] = set()       # this process's children, to stop them on Ctrl-C
# Starting a child and stopping them all exclude each other: a worker thread that passed its status
# check just as Ctrl-C came would otherwise start a run nobody stops, and the sweep (whose worker
# threads are joined at exit) would wait for that whole run instead of exiting.
_SPAWN_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _run_process(cmd: Sequence[str], log_path: str, threads: int = 1) -> int | None:
    """Run one command where this function runs (here, or on a Ray worker: its Python) with ``threads``
    OpenMP/MKL threads; None when the sweep is stopping and the command was not started."""
    cmd = [sys.executable if c == PYTHON else c for c in cmd]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(log_path, "a") as log:
        with _SPAWN_LOCK:
            if _STOPPING.is_set():
                return None
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            _RUNNING.add(proc)
        try:
            return proc.wait()
        finally:
            _RUNNING.discard(proc)


def _stop_children() -> None:
    """SIGTERM every running run (`neuropath train` checkpoints on it and exits) and start no more."""
    with _SPAWN_LOCK:
        _STOPPING.set()
        procs = list(_RUNNING)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_sweep(sweep_dir: Path, specs: list[RunSpec], *, jobs: int, ray_address: str | None = None,
              threads: int = 1, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Run every spec that is not finished and not running elsewhere; returns name → exit status of
    what was run. Two sweeps over one folder share the work: each skips the runs the other trains
    (locally, each run's command is decided when it starts, not when the sweep starts)."""
    sweep_dir = sweep_dir.resolve()
    states = {s.name: status(sweep_dir / "runs" / s.name, int(s.settings["steps"])) for s in specs}
    todo = [s for s in specs if states[s.name] not in ("finished", "running")]
    busy = sum(v == "running" for v in states.values())
    echo(f"{sum(v == 'finished' for v in states.values())} of {len(specs)} runs finished"
         + (f", {busy} running in another process" if busy else "") + f"; {len(todo)} to run"
         + (f" on Ray ({ray_address})" if ray_address else f", {jobs} at a time")
         + (f", {threads} threads each" if threads > 1 else ""))
    if not todo:
        return {}
    (sweep_dir / "logs").mkdir(parents=True, exist_ok=True)
    results: dict[str, int] = {}

    def done(name: str, rc: int | None) -> None:
        if rc is None:
            echo(f"{time.strftime('%H:%M:%S')} skipped {name}: finished or started by another process meanwhile")
            return
        results[name] = rc
        echo(f"{time.strftime('%H:%M:%S')} {'finished' if rc == 0 else f'FAILED (exit {rc}, see logs/{name}.log)'}"
             f" {name} [{len(results)}/{len(todo)}]")

    def log_of(spec: RunSpec) -> str:
        return str(sweep_dir / "logs" / f"{spec.name}.log")

    if ray_address:
        _run_on_ray(ray_address, [(s.name, command(sweep_dir, s, threads=threads), log_of(s)) for s in todo], done,
                    local_cpus=jobs * threads, threads=threads)
    else:
        def launch(spec: RunSpec) -> int | None:
            run_dir, steps = sweep_dir / "runs" / spec.name, int(spec.settings["steps"])
            state = status(run_dir, steps)
            if state in ("finished", "running"):
                return None
            rc = _run_process(command(sweep_dir, spec, state, threads=threads), log_of(spec), threads)
            # Another sweep over this folder may have seen the run free in the same seconds and started
            # it too: the run that lost the lock exits 2 ("in use") and the run itself is fine.
            if rc == 2 and status(run_dir, steps) in ("finished", "running"):
                return None
            return rc

        _STOPPING.clear()                # a sweep run again in this process after a Ctrl-C
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            futures = {pool.submit(launch, spec): spec.name for spec in todo}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        except KeyboardInterrupt:        # Ctrl-C or SIGTERM: start nothing new, checkpoint the rest
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_children()
            raise
        pool.shutdown()
    return results


def connect_ray(address: str, *, local_cpus: int | None = None):
    """``local`` starts a Ray instance here; ``auto`` joins the one running here; HOST:PORT
    joins a cluster's head node. A head that does not answer is one clear error, not Ray's
    minutes of retries."""
    try:
        import ray
    except ImportError:
        raise UsageError('--ray needs Ray: pip install -e ".[ray]"') from None
    if ":" in address and not address.startswith(("ray://", "auto", "local")):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError):
            raise UsageError(f"no Ray cluster answers at {address} (is `ray start --head` running there?)") from None
    kwargs = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(num_cpus=local_cpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise UsageError(f"cannot join Ray at {address!r}: {str(exc).splitlines()[0]}") from None
    return ray


def _run_on_ray(address: str, jobs_list: list[tuple[str, list[str], str]],
                done: Callable[[str, int], None], *, local_cpus: int | None = None, threads: int = 1) -> None:
    ray = connect_ray(address, local_cpus=local_cpus)
    try:
        task = ray.remote(num_cpus=threads, max_retries=2)(_run_process)
        pending = {task.remote(cmd, log, threads): name for name, cmd, log in jobs_list}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), int(ray.get(ref)))
    finally:
        ray.shutdown()
