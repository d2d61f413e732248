"""``neuropath report``: the comparison a sweep (or any folder of runs) supports.

Writes into ``<folder>/report/``:

- ``report.md``: the paper-style table (score = mean of a run's last 10 evaluations, mean ±
  std over seeds, and the normalised score: % of dense; where scores can be negative, 0 = a uniform-random
  policy and 100 = dense, see `normalisers`), the IQM and mean of the normalised scores with 95%
  stratified-bootstrap confidence intervals (rliable), and links to the plots;
- ``scores.csv``: one row per finished run, the numbers everything else is computed from;
- ``curves.png`` (learning curves per environment), ``sparsity.png`` (final return against
  sparsity per method, the paper's Figure), ``iqm.png`` and ``profiles.png`` (rliable);
- ``energy.png``: dense-normalised score against dense-normalised energy (the paper's Fig. 6),
  with energy as training FLOPs (the paper's model), and as measured joules or CPU seconds
  where the runs recorded them (`engine/energy.py` says which is which).

Runs are grouped by what their ``config.yaml`` says (environment, method, actor and critic
keep ratios), not by folder names, so a folder of hand-started runs reports the same way; runs of
a group that differ in any other setting (but the seed) are reported as separate variants.
Only runs that reached their step budget count; the others are listed as unfinished, and those with
evaluations count in the ``--at`` windows they have passed (a sweep still training, or cut records).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from ..errors import UsageError
from ..training.config import VARIANTS, Config, fill_legacy
from ..training.logging import read_csv, read_jsonl
from .random_reference import RANDOM_EPISODES, random_policy_return

LAST_EVALS = 10


@dataclass
class RunResult:
    path: Path
    env: str
    method: str
    sparsity: str           # "95%" or "a90%/c80%"; "0%" for dense
    sparsity_value: float   # mean of actor and critic sparsity, for plotting
    seed: int
    steps: np.ndarray
    returns: np.ndarray
    budget: int
    cpu_seconds: float | None = None    # cumulative CPU time of the run (newer runs)
    energy_j: float | None = None       # measured joules (NVML/RAPL), where available
    energy_mode: str = "none"
    settings: dict = field(default_factory=dict)   # what the run learned with (see `run_settings`)
    freezes: list = field(default_factory=list)    # (step, reason) of each network's freeze (pathway.jsonl)
    finished: bool = True   # reached its budget; a cut run counts only in the step windows it passed
    threads: int = 0        # torch threads it ran on (0: torch's default); CPU seconds compare at equal threads

    @property
    def score(self) -> float:
        return float(self.returns[-LAST_EVALS:].mean())

    @property
    def group(self) -> tuple[str, str, str]:
        return self.env, self.method, self.sparsity


def method_label(pathway: dict, settings: dict | None = None) -> str:
    """The method a run is grouped under: its pathway method, with its score where that is not SNIP
    (``dapd+grasp``; per-network scores as ``dapd+a:grasp/c:snip``) and the named DAPD variants its
    ``settings`` (`run_settings`) hold (``dapd@authors``, ``dapd@own-age``, ``dapd@authors@own-age``)."""
    label = _score_label(pathway)
    if pathway["pathway"] == "dapd" and settings:
        for name, values in VARIANTS.items():
            if all(_setting_text(settings.get(k)) == _setting_text(v) for k, v in values.items()):
                label += f"@{name}"
    return label


def _score_label(pathway: dict) -> str:
    method = pathway["pathway"]
    if method not in ("dapd", "static", "npf"):
        return method
    score = pathway.get("score") or "snip"
    actor, critic = pathway.get("actor_score") or score, pathway.get("critic_score") or score
    if actor == critic:
        return method if actor == "snip" else f"{method}+{actor}"
    return f"{method}+a:{actor}/c:{critic}"


RUN_MECHANICS = frozenset({"seed", "run_dir", "device", "threads", "sparse", "checkpoint_every", "checkpoint_minutes",
                           "keep_checkpoints", "log_every", "progress"})
"""settings that change how a run is executed or kept, not what it learns: never a reason to tell runs apart"""


@functools.cache
def _default_settings() -> dict:
    """Today's defaults of every setting, flat (built once, not per run loaded)."""
    return {k: v for section in Config().to_dict().values() for k, v in section.items() if k not in RUN_MECHANICS}


def run_settings(cfg: dict) -> dict:
    """A run's settings as one flat dict, today's defaults filling what its config.yaml predates (a setting
    added later keeps the behaviour older runs had), less `RUN_MECHANICS`."""
    flat = dict(_default_settings())
    for section in fill_legacy(dict(cfg)).values():
        if isinstance(section, dict):
            flat.update(section)
    return {k: v for k, v in flat.items() if k not in RUN_MECHANICS}


def _setting_text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def split_variants(runs: list[RunResult]) -> list[RunResult]:
    """Runs of one environment, method and sparsity that differ in a setting (two sweeps reported together, one
    with ``--set bootstrap_truncated=true``) are not seeds of one method: each variant's label gains the settings
    in which it differs from today's defaults (``dense[bootstrap_truncated=true,clip_value=false]``); the
    variant on the defaults keeps the plain label, so dense stays the normaliser and the reference."""
    defaults = {k: _setting_text(v) for k, v in _default_settings().items()}
    members: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        members[run.group].append(run)
    for group in members.values():
        names = sorted(set().union(*(r.settings for r in group)))
        differ = [k for k in names if len({_setting_text(r.settings.get(k)) for r in group}) > 1]
        for run in group:
            shown = [f"{k}={_setting_text(run.settings.get(k))}" for k in differ
                     if _setting_text(run.settings.get(k)) != defaults.get(k)]
            if shown:
                run.method = f"{run.method}[{','.join(shown)}]"
    return runs


def _sparsity(pathway: dict) -> tuple[str, float]:
    if pathway["pathway"] == "dense":
        return "0%", 0.0
    keep = float(pathway["keep_ratio"])
    a = 1 - float(pathway.get("actor_keep") or keep)
    c = 1 - float(pathway.get("critic_keep") or keep)
    label = f"{a:.0%}" if math.isclose(a, c) else f"a{a:.0%}/c{c:.0%}"
    return label, (a + c) / 2


def load_runs(root: Path) -> tuple[list[RunResult], list[str]]:
    """Finished runs under ``root`` and the names of the unfinished ones."""
    done, cut, others = load_all_runs(root)
    return done, [str(r.path.relative_to(root)) for r in cut] + others


def load_all_runs(root: Path) -> tuple[list[RunResult], list[RunResult], list[str]]:
    """The runs under ``root``: those that reached their step budget, those cut short with evaluations so far
    (a run still training, or the record of one, benchmarks/run_records.py ``--cut``: `window_runs` scores them
    on a window they passed), and the names of the rest, each with why where it is not plain unfinished."""
    if not root.is_dir():
        raise UsageError(f"folder {str(root)!r} does not exist")
    done, cut, others = [], [], []
    for cfg_path in sorted(root.rglob("config.yaml")):
        run = cfg_path.parent
        if ".incomplete-" in str(run) or "report" in run.relative_to(root).parts[:1]:
            continue
        try:
            cfg = yaml.safe_load(cfg_path.read_text())
            r, p = cfg["run"], cfg["pathway"]
            rows = read_csv(run / "metrics.csv") if (run / "metrics.csv").is_file() else []
        except Exception:  # noqa: BLE001 - a broken run is reported, not fatal
            others.append(f"{run.relative_to(root)} (unreadable)")
            continue
        if r.get("benchmark") or (cfg.get("offline") or {}).get("dataset"):
            others.append(f"{run.relative_to(root)} (multi-task or offline: not in this report yet)")
            continue
        # up to the first evaluation at or past the budget: PPO ends on a whole rollout (1M -> 1,001,472)
        end = next((i for i, x in enumerate(rows) if int(x["step"]) >= int(r["steps"])), None)
        if end is None and not rows:
            others.append(str(run.relative_to(root)))
            continue
        rows = rows if end is None else rows[:end + 1]
        label, value = _sparsity(p)
        last = rows[-1]
        algo = r.get("algo") or "auto"
        env = r["env"] if algo in ("auto", "sac") else f"{r['env']} ({algo})"   # compared within an algorithm
        settings = run_settings(cfg)
        (cut if end is None else done).append(
            RunResult(run, env, method_label(p, settings), label, value, int(r["seed"]),
                      np.array([int(x["step"]) for x in rows]),
                      np.array([float(x["return_mean"]) for x in rows]), int(r["steps"]),
                      _number(last.get("cpu_seconds")), _number(last.get("energy_j")),
                      last.get("energy_mode") or "none", settings, freeze_events(run), end is not None,
                      int(r.get("threads") or 0)))
    if not done and not cut and not others:
        raise UsageError(f"no neuropath runs under {str(root)!r}")
    return done, cut, others


def freeze_events(run: Path) -> list[tuple[int, str]]:
    """When and why each network of a run froze: ``(step, reason)``, one per distinct freeze, from the run's
    ``pathway.jsonl`` or, in a record (benchmarks/run_records.py), its ``freeze.jsonl``."""
    path = next((run / f for f in ("freeze.jsonl", "pathway.jsonl") if (run / f).is_file()), None)
    if path is None:
        return []
    out: list[tuple[int, str]] = []
    try:
        for event in read_jsonl(path):
            if event.get("event") == "freeze":
                item = (int(event.get("frozen_at", event["step"])), str(event.get("reason", "")))
                if item not in out:
                    out.append(item)
    except Exception:  # noqa: BLE001 - a cut last line (a killed run) leaves the freezes read so far
        pass
    return out


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def group_runs(runs: list[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    groups: dict[tuple[str, str, str], list[RunResult]] = defaultdict(list)
    for run in sorted(runs, key=lambda x: (x.env, x.method != "dense", x.method, x.sparsity_value, x.seed)):
        groups[run.group].append(run)
    return dict(groups)


class Norm(NamedTuple):
    """A score normalised in one environment: ``(score - offset) / scale``."""
    offset: float
    scale: float

    def __call__(self, score: float) -> float:
        return (score - self.offset) / self.scale


def normalisers(groups: dict, zero_of: Callable[[str], float | None] | None = None) -> tuple[dict[str, Norm], str]:
    """Per environment: divided by the mean dense score (1 = dense); with no dense runs, by the best
    group's mean. Where scores can be negative (HalfCheetah, Pong) or that divisor is not positive,
    ``(score - random) / (dense - random)`` with ``random`` = a uniform-random policy's return on the
    environment (`random_reference`; ``zero_of(env_id)``, None where it cannot be measured); where dense
    does not beat random either, min-max over the environment's runs: 0 = the worst run, 1 = the best."""
    zero_of = zero_of or _random_zero
    out, hows = {}, set()
    for env in {k[0] for k in groups}:
        scores = [r.score for k, runs in groups.items() if k[0] == env for r in runs]
        dense = [r.score for k, runs in groups.items() if k[0] == env and k[1] == "dense" for r in runs]
        best = max(float(np.mean([r.score for r in runs])) for k, runs in groups.items() if k[0] == env)
        divisor = float(np.mean(dense)) if dense else best
        ref = "dense" if dense else "the best method (no dense runs)"
        if divisor > 0 and min(scores) >= 0:
            out[env] = Norm(0.0, divisor)
            hows.add("dense's mean score in the same environment" if dense else
                     "the best method's mean score (no dense runs)")
            continue
        zero = zero_of(env.split(" (")[0])       # "ALE/Pong-v5 (dqn)" -> the environment id
        if zero is not None and divisor > zero:
            out[env] = Norm(zero, divisor - zero)
            hows.add(f"(score − random) / ({ref} − random) where scores can be < 0, random = a uniform-random "
                     f"policy's mean return over {RANDOM_EPISODES} episodes")
        else:
            lo, hi = min(scores), max(scores)
            out[env] = Norm(lo, hi - lo if hi > lo else 1.0)
            hows.add(f"min-max over the environment's runs (where {ref} does not beat a random policy)")
    return out, "; ".join(sorted(hows))


def _random_zero(env_id: str) -> float | None:
    """A uniform-random policy's return, or None where the environment cannot be built here."""
    try:
        return random_policy_return(env_id)
    except Exception:  # noqa: BLE001 - an environment missing here falls back to min-max, said in the report
        return None


def score_matrix(groups: dict, norm: dict[str, float]) -> tuple[dict[str, np.ndarray], list[str]]:
    """rliable's layout: ``{method@sparsity: array [runs, envs]}`` of normalised scores. A
    method must have runs in every environment; each env contributes its first n seeds,
    n = the smallest seed count (stratified bootstrap needs a rectangle)."""
    envs = sorted({k[0] for k in groups})
    by_key: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for (env, method, sp), runs in groups.items():
        by_key[f"{method}@{sp}"][env] = [norm[env](r.score) for r in runs]
    out, skipped = {}, []
    for key, per_env in by_key.items():
        if set(per_env) != set(envs):
            skipped.append(key)
            continue
        n = min(len(v) for v in per_env.values())
        out[key] = np.array([[per_env[e][i] for e in envs] for i in range(n)])
    return out, skipped


@contextlib.contextmanager
def _global_numpy_seed(seed: int):
    """rliable 1.2's stratified bootstrap draws its indices from numpy's global generator and ignores the
    ``random_state`` it is given, so a report's CIs changed from one run to the next: seed the global
    generator for the call and give the caller's state back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def interval_estimates(matrix: dict[str, np.ndarray], reps: int, seed: int = 0) -> dict[str, dict]:
    """IQM and mean with 95% stratified-bootstrap CIs (rliable)."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    with warnings.catch_warnings(), _global_numpy_seed(seed):   # arch 7 deprecates rliable's random_state
        warnings.simplefilter("ignore", FutureWarning)
        point, ci = rly.get_interval_estimates(matrix, aggregate, reps=reps,
                                               random_state=np.random.RandomState(seed))
    return {k: {"iqm": float(point[k][0]), "iqm_ci": (float(ci[k][0, 0]), float(ci[k][1, 0])),
                "mean": float(point[k][1]), "mean_ci": (float(ci[k][0, 1]), float(ci[k][1, 1]))}
            for k in matrix}


MIN_RUNS_FOR_VERDICT = 3
"""runs per environment on each side before the report calls a difference better or worse"""


def _probabilities(pairs: dict[str, tuple[np.ndarray, np.ndarray]], reps: int, seed: int) -> dict[str, dict]:
    """P(X > Y) with a 95% stratified-bootstrap CI for each named pair (X, Y) of run × environment score
    matrices (rliable's probability of improvement)."""
    from rliable import library as rly
    from rliable import metrics

    with warnings.catch_warnings(), _global_numpy_seed(seed):
        warnings.simplefilter("ignore", FutureWarning)
        point, ci = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps,
                                               random_state=np.random.RandomState(seed))
    return {k: {"p": float(point[k]), "ci": (float(np.ravel(ci[k])[0]), float(np.ravel(ci[k])[1]))} for k in pairs}


def improvement_over(matrix: dict[str, np.ndarray], versus: str, reps: int, seed: int = 0) -> dict[str, dict]:
    """P(X > reference) for every other ``method@sparsity`` X: the probability that a run of X scores higher
    than a run of the reference on the same environment, averaged over environments (rliable's probability
    of improvement, a Mann-Whitney statistic: rank-based, so the normalisation does not matter), with a 95%
    stratified-bootstrap CI. The reference is method ``versus`` at X's sparsity, or at its only sparsity
    (dense). This is the number that says whether one method beats another, and how surely: 0.5 is a tie."""
    refs = {k.rsplit("@", 1)[1]: k for k in matrix if k.rsplit("@", 1)[0] == versus}
    chosen = {}
    for key in matrix:
        method, sparsity = key.rsplit("@", 1)
        ref = refs.get(sparsity) or (next(iter(refs.values())) if len(refs) == 1 else None)
        if method != versus and ref is not None:
            chosen[key] = ref
    if not chosen:
        return {}
    probs = _probabilities({k: (matrix[k], matrix[ref]) for k, ref in chosen.items()}, reps, seed)
    return {k: {"versus": chosen[k], **probs[k]} for k in chosen}


def adaptation_pairs(matrix: dict[str, np.ndarray]) -> dict[str, tuple[str, str]]:
    """``score@sparsity`` → (DAPD's key, static's key) for every score that both ran at the same sparsity: the two
    differ only in adapting the mask to the agent's data (DAPD's warm-up) or fixing it once at the start
    (static), so their comparison separates "which score" from "adapting to the data"."""
    pairs = {}
    for key in matrix:
        method, sparsity = key.rsplit("@", 1)
        if method == "dapd" or method.startswith("dapd+"):
            score = method[len("dapd+"):] or "snip"
            static = f"static{method[len('dapd'):]}@{sparsity}"
            if static in matrix:
                pairs[f"{score}@{sparsity}"] = (key, static)
    return pairs


def _verdict(lo: float, hi: float, n: int, n_ref: int) -> str:
    if min(n, n_ref) < MIN_RUNS_FOR_VERDICT:     # a bootstrap of one or two runs has no spread to speak of
        return f"too few runs (< {MIN_RUNS_FOR_VERDICT} each)"
    return "better" if lo > 0.5 else "worse" if hi < 0.5 else "not distinguishable"


_P_TEXT = ("the chance that a run of X scores higher than a run of the reference on the same environment, averaged "
           "over environments (rliable), 95% stratified-bootstrap CI. 0.5 is a tie; a CI that excludes 0.5 is a "
           "difference these seeds support.")


def _improvement_lines(matrix: dict[str, np.ndarray], versus: str | None, reps: int) -> list[str]:
    methods = sorted({k.rsplit("@", 1)[0] for k in matrix})
    if versus is None:
        if "dense" not in methods:
            return []
        versus = "dense"
    elif versus not in methods:
        return ["", f"No probability of improvement over {versus}: its runs do not cover every environment."]
    probs = improvement_over(matrix, versus, reps)
    if not probs:
        return []
    lines = ["", f"## Probability of improvement over {versus}", "", f"P(X > reference): {_P_TEXT}", "",
             "| method @ sparsity | reference | runs per env (X, reference) | P(X > reference) [95% CI] | verdict |",
             "|---|---|---|---|---|"]
    for k, e in sorted(probs.items(), key=lambda kv: -kv[1]["p"]):
        lo, hi = e["ci"]
        n, n_ref = matrix[k].shape[0], matrix[e["versus"]].shape[0]
        lines.append(f"| {k} | {e['versus']} | {n}, {n_ref} | {e['p']:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{_verdict(lo, hi, n, n_ref)} |")
    return lines


def _adaptation_lines(matrix: dict[str, np.ndarray], reps: int, seed: int = 0) -> list[str]:
    pairs = adaptation_pairs(matrix)
    if not pairs:
        return []
    probs = _probabilities({s: (matrix[d], matrix[st]) for s, (d, st) in pairs.items()}, reps, seed)
    lines = ["", "## Adapting the mask vs fixing it once, per score", "",
             "The same score with DAPD's warm-up (the mask re-chosen on the agent's recent data) and as a static "
             f"mask chosen once at the start. P(DAPD > static): {_P_TEXT}", "",
             "| score @ sparsity | DAPD | static | runs per env | P(DAPD > static) [95% CI] | verdict |",
             "|---|---|---|---|---|---|"]
    for s, (d, st) in sorted(pairs.items(), key=lambda kv: -probs[kv[0]]["p"]):
        lo, hi = probs[s]["ci"]
        n, n_ref = matrix[d].shape[0], matrix[st].shape[0]
        lines.append(f"| {s} | {d} | {st} | {n}, {n_ref} | {probs[s]['p']:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{_verdict(lo, hi, n, n_ref)} |")
    return lines


def write_report(root: Path | list[Path], out: Path | None = None, *, reps: int = 2000,
                 versus: str | list[str] | None = None, at: list[tuple[int, int]] = ()) -> Path:
    """The report of every finished run under ``root`` (a folder, or several: runs of several sweeps, or
    single run directories, compared in one table); written to ``out`` (default: the first root's report/).
    ``versus``: the method(s) the others' probability of improvement is measured against (default: dense);
    ``at``: step windows ``(start, end)`` scored again on their own (a claim about the middle of the curves)."""
    versus_list = [versus] if isinstance(versus, str) else list(versus or [])
    roots = [root] if isinstance(root, Path) else list(root)
    runs, cut, unfinished = [], [], []
    for r in roots:
        done, partial, left = load_all_runs(r)
        runs += done
        cut += partial
        left = [str(x.path.relative_to(r)) for x in partial] + left
        unfinished += left if len(roots) == 1 else [f"{r.name}/{x}" for x in left]
    split_variants(runs + cut)                            # one label per variant, finished or not
    groups = group_runs(runs)
    methods = sorted({method for _, method, _ in groups})
    usable = sorted(set(methods) | ({r.method for r in cut} if at else set()))   # a cut run counts in a window
    for ref in versus_list:                                # checked before anything is written
        if ref not in usable:
            what = "runs" if at else "finished runs"
            have = (f"the methods with {what} are {', '.join(usable)}" if usable
                    else "no run has evaluations yet" if at else "no run has finished yet")
            raise UsageError(f"--versus {ref}: no {what} of that method; {have}")
    for start, end in at:
        if not 0 <= start <= end:
            raise UsageError(f"--at {start}:{end}: a window needs 0 <= START <= END")
    out = out or roots[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# neuropath report: {', '.join(map(str, roots))}", ""]
    windows = [line for start, end in at                 # the finished runs and the cut ones that passed
               for line in _window_lines(window_runs(runs + cut, start, end), start, end, versus_list, reps)]
    if not runs:
        lines += ["No finished runs yet.", "", *windows]
    else:
        norm, how = normalisers(groups)
        palette = Palette(sorted(set(methods) | {r.method for r in cut}))   # one colour per method in every plot
        lines += _table(groups, norm)
        _write_scores(out / "scores.csv", groups)
        matrix, skipped = score_matrix(groups, norm)
        if matrix:
            est = interval_estimates(matrix, reps)
            lines += ["", f"## Aggregate over environments (normalised scores: {how})", "",
                      f"IQM and mean with 95% stratified-bootstrap confidence intervals (rliable, {reps} "
                      f"resamples); runs per environment: the smallest seed count of the method.", "",
                      "| method @ sparsity | runs × envs | IQM [95% CI] | mean [95% CI] |", "|---|---|---|---|"]
            for k, e in sorted(est.items(), key=lambda kv: -kv[1]["iqm"]):
                lines.append(f"| {k} | {matrix[k].shape[0]} × {matrix[k].shape[1]} | {e['iqm']:.3f} "
                             f"[{e['iqm_ci'][0]:.3f}, {e['iqm_ci'][1]:.3f}] | {e['mean']:.3f} "
                             f"[{e['mean_ci'][0]:.3f}, {e['mean_ci'][1]:.3f}] |")
            if skipped:
                lines.append(f"\nNot aggregated (missing some environment): {', '.join(sorted(skipped))}")
            for ref in versus_list or [None]:
                lines += _improvement_lines(matrix, ref, reps)
            lines += _adaptation_lines(matrix, reps)
            _plot_intervals(est, out / "iqm.png", palette)
            _plot_profiles(matrix, out / "profiles.png", palette)
            lines += ["", "![IQM](iqm.png) ![performance profiles](profiles.png)"]
        lines += _freeze_lines(groups)
        lines += windows
        lines += _energy(groups, norm, out / "energy.png", palette)
        _plot_curves(groups, out / "curves.png", palette, cut)
        _plot_sparsity(groups, out / "sparsity.png", palette)
        lines += ["", "![learning curves](curves.png)", "", "![return vs sparsity](sparsity.png)"]
    if unfinished:
        lines += ["", f"Unfinished runs, not in the final scores ({len(unfinished)}): " + ", ".join(unfinished)]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out


def score_decimals(scores) -> int:
    """Decimals that keep a score table readable and honest: MuJoCo returns (hundreds to thousands) as
    integers; games scored in single digits (MinAtar Breakout ~6) with 2 decimals, not "6 ± 0"."""
    scale = float(np.max(np.abs(scores))) if len(scores) else 0.0
    return 0 if scale >= 100 else 1 if scale >= 10 else 2


def _table(groups: dict, norm: dict[str, Norm]) -> list[str]:
    lines = [f"Score = mean return of a run's last {LAST_EVALS} evaluations; mean ± std over seeds.", "",
             "| env | method | sparsity | steps | seeds | score | per seed | normalised (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for (env, method, sp), runs in groups.items():
        s = np.array([r.score for r in runs])
        budgets = sorted({r.budget for r in runs})
        d = score_decimals(s)
        lines.append(f"| {env} | {method} | {sp} | {'/'.join(map(str, budgets))} | {len(s)} | "
                     f"{s.mean():.{d}f} ± {s.std():.{d}f} | {', '.join(f'{x:.{d}f}' for x in s)} | "
                     f"{100 * norm[env](s.mean()):.1f} |")
    return lines


def _freeze_lines(groups: dict) -> list[str]:
    """When and why each run's pathway froze (methods with a warm-up; static masks are fixed from the start)."""
    rows = []
    for (env, method, sp), runs in groups.items():
        if not any(r.settings.get("pathway") == "dapd" for r in runs):
            continue
        cells = []
        for r in runs:
            step, reason = r.freezes[0] if r.freezes else (None, "")
            cells.append(f"s{r.seed}: never" if step is None else f"s{r.seed}: {step:,} ({reason})")
        rows.append(f"| {env} | {method} | {sp} | {'; '.join(cells)} |")
    if not rows:
        return []
    return ["", "## Freezes", "", "Where each DAPD run's pathway froze and why (▼ on the learning curves).", "",
            "| env | method | sparsity | per seed |", "|---|---|---|---|", *rows]


def window_runs(runs: list[RunResult], start: int, end: int) -> list[RunResult]:
    """The runs as if each ended at ``end``, scored on its evaluations in [start, end] (the last
    `LAST_EVALS` of them): claims about a point of the curve ("DAPD ahead of dense at 250k-300k steps")
    judged with the same statistics as the final scores. Runs without an evaluation there are left out."""
    out = []
    for r in runs:
        keep = (r.steps >= start) & (r.steps <= end)
        if keep.any() and r.steps[-1] >= end:
            out.append(dataclasses.replace(r, steps=r.steps[keep], returns=r.returns[keep]))
    return out


def _window_lines(runs: list[RunResult], start: int, end: int, versus: list[str], reps: int) -> list[str]:
    groups = group_runs(runs)
    if not groups:
        return ["", f"## At steps {start:,}–{end:,}", "", "No run has evaluations there."]
    norm, _ = normalisers(groups)
    lines = ["", f"## At steps {start:,}–{end:,}", "",
             f"The same runs scored on their evaluations from {start:,} to {end:,} steps (the last {LAST_EVALS} "
             "of them), normalised as above.", ""]
    passed = [r for r in runs if not r.finished]
    if passed:
        lines[-1:] = [f"Unfinished runs that have passed {end:,} steps count here too ({len(passed)}): "
                      + ", ".join(f"{r.env} {r.method} s{r.seed}" for r in passed) + ".", ""]
    lines += _table(groups, norm)[2:]
    matrix, _ = score_matrix(groups, norm)
    if matrix:
        est = interval_estimates(matrix, reps)
        lines += ["", "| method @ sparsity | IQM [95% CI] |", "|---|---|"]
        lines += [f"| {k} | {e['iqm']:.3f} [{e['iqm_ci'][0]:.3f}, {e['iqm_ci'][1]:.3f}] |"
                  for k, e in sorted(est.items(), key=lambda kv: -kv[1]["iqm"])]
        for ref in versus or [None]:
            lines += _improvement_lines(matrix, ref, reps)
    return lines


def _write_scores(path: Path, groups: dict) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env", "method", "sparsity", "seed", "steps", "score", "run"])
        for runs in groups.values():
            for r in runs:
                w.writerow([r.env, r.method, r.sparsity, r.seed, r.budget, f"{r.score:.4f}", str(r.path)])


# ---- energy -----------------------------------------------------------------------------

def _run_flops(run: RunResult) -> float | None:
    from ..efficiency.counted_flops import count_run
    record = run.path / "flops.json"                # a record keeps the count its run's checkpoint gave
    if record.is_file():
        try:
            return float(json.loads(record.read_text())["training_flops"])
        except Exception:  # noqa: BLE001 - an unreadable count is no count
            return None
    try:  # the same per-algorithm count as `neuropath flops`
        return count_run(run.path)[2]
    except Exception:  # noqa: BLE001 - a run without a readable checkpoint has no FLOP count
        return None


def _energy(groups: dict, norm: dict[str, Norm], path: Path, palette: Palette | None = None) -> list[str]:
    """Energy beside return: per group the training FLOPs, CPU seconds and measured joules,
    each divided by the dense runs' mean in the same environment, and the Fig. 6 plot.
    CPU seconds count only the runs on an environment's usual thread count: a run on two threads
    spends ~1.4x the CPU time of a one-thread run for the same work, which would skew the ratio."""
    threads = _usual_threads(groups)
    costs = {k: {"flops": [_run_flops(r) for r in runs],
                 "cpu": [r.cpu_seconds for r in runs if r.threads == threads[k[0]]],
                 "joules": [r.energy_j for r in runs]} for k, runs in groups.items()}
    left_out = sorted(f"{r.env} {r.method} s{r.seed} ({r.threads or 'default'} threads)"
                      for k, runs in groups.items() for r in runs if r.threads != threads[k[0]])
    modes = sorted({r.energy_mode for runs in groups.values() for r in runs if r.energy_j is not None})

    def mean(values: list) -> float | None:
        return float(np.mean(values)) if values and all(v is not None for v in values) else None

    base = {}
    for env in {k[0] for k in groups}:
        dense = [k for k in groups if k[0] == env and k[1] == "dense"]
        base[env] = {m: (mean(costs[dense[0]][m]) if dense else None) for m in ("flops", "cpu", "joules")}
    rows, points = [], defaultdict(list)
    for k, runs in groups.items():
        env = k[0]
        cells = []
        for m in ("flops", "cpu", "joules"):
            v, b = mean(costs[k][m]), base[env][m]
            rel = v / b if v is not None and b else None
            cells.append("–" if v is None else f"{v:.3g}" + (f" ({rel:.3f})" if rel is not None else ""))
            if rel is not None:
                points[m].append((k, rel, norm[env](float(np.mean([r.score for r in runs])))))
        rows.append(f"| {env} | {k[1]} | {k[2]} | {' | '.join(cells)} |")
    if not any(points.values()):
        return []
    _plot_energy(points, path, palette)
    return ["", "## Energy", "",
            "Per group, mean over seeds; in brackets divided by dense's mean in the same environment. "
            "Training FLOPs: `neuropath flops` (1 MAC = 2 FLOPs; updates, mask scoring and topology "
            "updates; the paper's energy model is energy ∝ FLOPs). CPU seconds: the run's own process "
            "time (energy ∝ CPU time at constant per-core power; recorded by runs since the energy "
            "columns were added)" + (f", of runs on the environment's usual thread count only (left out: "
                                     f"{', '.join(left_out)})" if left_out else "")
            + ". Joules: measured, " + (", ".join(modes) if modes else "not available here") + ".", "",
            "| env | method | sparsity | training FLOPs | CPU seconds | joules |", "|---|---|---|---|---|---|",
            *rows, "", "![score vs energy](energy.png)"]


def _usual_threads(groups: dict) -> dict[str, int]:
    """Per environment, the thread count most of its runs used (the smaller one on a tie)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for (env, *_), runs in groups.items():
        counts[env].update(r.threads for r in runs)
    return {env: min(c, key=lambda t: (-c[t], t)) for env, c in counts.items()}


# ---- plots --------------------------------------------------------------------------------
# Every figure is built by a ``*_figure`` function (tests measure its layout) and saved by a ``_plot_*`` one.
# A report may compare 15 variants with labels like "dapd@authors+keep0.05+score=grasp+window=20000", so
# figures grow with what they show: legends go under the panels, the IQM plot widens to its longest label.

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    """``bbox_inches="tight"``: whatever the layout left at the edge is kept, never cut off."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)


_METHOD_ORDER = ("dense", "dapd", "static", "random", "set", "rigl", "rlx2")


_SCORE_COLORS = {"grad": "C5", "grasp": "C6", "synflow": "C7", "magnitude": "C8", "random": "C9"}

_LEGEND_FONT = 7.5


def _method_of(key: str) -> str:
    """``"dapd@authors@95%"`` -> ``"dapd@authors"``: a method keeps its colour at every sparsity."""
    return key.rsplit("@", 1)[0] if key.endswith("%") else key


def _family(method: str) -> tuple[str, str]:
    """What shares a colour: a score ablation's ``dapd+grasp`` and ``static+grasp`` (their line styles
    differ), otherwise each method on its own."""
    score = method.partition("+")[2]
    return ("score", score) if score in _SCORE_COLORS else ("method", method)


def _classic_color(family: tuple[str, str]) -> str:
    kind, name = family
    if kind == "score":
        return _SCORE_COLORS[name]
    index = _METHOD_ORDER.index(name) if name in _METHOD_ORDER else len(_METHOD_ORDER) + sum(map(ord, name))
    return f"C{index % 10}"


class Palette:
    """One colour per method in every plot of a report ("rigl@95%" and "rigl" alike), so figures can be read
    together. Up to 10 method families keep the fixed tab10 colours reports always had, where those are
    distinct; more (a sweep of 15 variants) take tab20, its 10 dark hues first, and past 20 a marker too."""

    def __init__(self, methods: Iterable[str]):
        order = sorted({_method_of(m) for m in methods},
                       key=lambda m: (m not in _METHOD_ORDER, _METHOD_ORDER.index(m) if m in _METHOD_ORDER else 0, m))
        families = list(dict.fromkeys(map(_family, order)))
        classic = [_classic_color(f) for f in families]
        if len(families) <= 10 and len(set(classic)) == len(classic):
            self._look = {f: (c, None) for f, c in zip(families, classic)}
        else:
            from matplotlib import colormaps
            from matplotlib.colors import to_hex
            tab20 = [to_hex(colormaps["tab20"](i)) for i in (*range(0, 20, 2), *range(1, 20, 2))]
            self._look = {f: (tab20[i % 20], None if i < 20 else "osD^vP*X<>"[(i // 20 - 1) % 10])
                          for i, f in enumerate(families)}

    def color(self, key: str) -> str:
        family = _family(_method_of(key))
        return self._look[family][0] if family in self._look else _classic_color(family)

    def marker(self, key: str) -> str | None:
        """A marker for lines past the 20th colour, where colour alone no longer tells methods apart."""
        return self._look.get(_family(_method_of(key)), (None, None))[1]


def _style(method: str, sparsity_index: int) -> str:
    """A method's sparsities get their own line styles; a static score-ablation run starts one style later."""
    shift = 1 if method.startswith("static+") else 0
    return ("-", "--", ":", "-.")[(sparsity_index + shift) % 4]


def _unique_legend(axes) -> tuple[list, list[str]]:
    """The entries of every panel, each label once (the same method in several environments)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def _legend_below(fig, handles: list, labels: list[str], panels_height: float) -> None:
    """One legend under the panels, in as many columns as the figure's width holds; the figure is widened to
    the widest entry and heightened by the legend's rows. A legend inside a panel covers 15 methods' curves,
    and one wider than its panel is cut off."""
    if not labels:
        fig.set_size_inches(fig.get_figwidth(), panels_height)
        return
    renderer = fig.canvas.get_renderer()
    probe = fig.legend(handles, labels, ncols=1, fontsize=_LEGEND_FONT, frameon=False)
    box = probe.get_window_extent(renderer)
    probe.remove()
    spacing = probe.columnspacing * _LEGEND_FONT / 72               # between columns, in inches
    column, row = box.width / fig.dpi + spacing, box.height / fig.dpi / len(labels)
    width = max(fig.get_figwidth(), column + 0.4)
    ncols = max(1, min(len(labels), int((width - 0.4) // column)))
    rows = -(-len(labels) // ncols)
    fig.set_size_inches(width, panels_height + rows * row + 0.35)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=_LEGEND_FONT, frameon=False)


def _compact_steps(ax) -> None:
    """Step ticks as 200k / 1M: seven-digit numbers overlap on a narrow panel."""
    from matplotlib.ticker import EngFormatter
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _counts_text(counts: list[int]) -> str:
    return f"n={counts[0]}" if min(counts) == max(counts) else f"n={min(counts)}–{max(counts)}"


def curves_figure(groups: dict, palette: Palette | None = None, cut: Iterable[RunResult] = ()):
    """Learning curves per environment, mean ± std over seeds, ▼ where a run's pathway froze; each ``cut``
    (unfinished) run as a thin dotted line of its own, as far as it got."""
    plt = _plt()
    cut = list(cut)
    palette = palette or Palette({k[1] for k in groups} | {r.method for r in cut})
    envs = sorted({k[0] for k in groups} | {r.env for r in cut})
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4), squeeze=False, layout="constrained")
    counts: dict[tuple[str, str], list[int]] = defaultdict(list)
    for (_, method, sp), runs in groups.items():
        counts[(method, sp)].append(len(runs))
    for ax, env in zip(axes[0], envs):
        for (e, method, sp), runs in groups.items():
            if e != env:
                continue
            n = min(len(r.steps) for r in runs)
            rets = np.stack([r.returns[:n] for r in runs])
            steps = runs[0].steps[:n]
            color = palette.color(method)
            ax.plot(steps, rets.mean(0), color=color, label=f"{method} {sp} ({_counts_text(counts[(method, sp)])})",
                    ls=_style(method, sorted(k[2] for k in groups if k[:2] == (env, method)).index(sp)),
                    marker=palette.marker(method), markevery=max(1, n // 8), ms=4)
            ax.fill_between(steps, rets.mean(0) - rets.std(0), rets.mean(0) + rets.std(0), color=color, alpha=0.15)
            frozen = [step for r in runs for step, _ in r.freezes[:1] if 0 < step <= steps[-1]]
            if frozen:   # where each run's pathway froze, on the mean curve
                ax.plot(frozen, np.interp(frozen, steps, rets.mean(0)), "v", color=color, ms=6,
                        markeredgecolor="black", markeredgewidth=0.5)
        for r in (r for r in cut if r.env == env):
            ax.plot(r.steps, r.returns, color=palette.color(r.method), ls=":", lw=1.2,
                    label=f"{r.method} {r.sparsity} s{r.seed}, unfinished ({steps_text(int(r.steps[-1]))})")
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        _compact_steps(ax)
    _legend_below(fig, *_unique_legend(axes[0]), 4)
    return fig


def _plot_curves(groups: dict, path: Path, palette: Palette | None = None, cut: Iterable[RunResult] = ()) -> None:
    _save(curves_figure(groups, palette, cut), path)


def steps_text(steps: int) -> str:
    """1000000 -> 1M, 250000 -> 250k: budgets and steps as the notebook writes them."""
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if steps >= div and steps % (div // 10) == 0:
            return f"{steps / div:g}{unit}"
    return str(steps)


def sparsity_figure(groups: dict, palette: Palette | None = None):
    """Final score against sparsity per method and environment, dense as a dashed line."""
    plt = _plt()
    palette = palette or Palette(k[1] for k in groups)
    envs = sorted({k[0] for k in groups})
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False, layout="constrained")
    for ax, env in zip(axes[0], envs):
        methods = sorted({k[1] for k in groups if k[0] == env and k[1] != "dense"})
        for method in methods:
            pts = sorted((runs[0].sparsity_value, np.mean([r.score for r in runs]), np.std([r.score for r in runs]))
                         for (e, m, _), runs in groups.items() if e == env and m == method)
            xs, ys, es = (np.array(v) for v in zip(*pts))
            ax.errorbar(100 * xs, ys, yerr=es, marker=palette.marker(method) or "o", capsize=3, label=method,
                        color=palette.color(method))
        dense = [r.score for (e, m, _), runs in groups.items() if e == env and m == "dense" for r in runs]
        if dense:
            ax.axhline(np.mean(dense), color="k", ls="--", lw=1, label="dense")
        ax.set_title(env)
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel(f"score (mean of last {LAST_EVALS} evals)")
    _legend_below(fig, *_unique_legend(axes[0]), 3.8)
    return fig


def _plot_sparsity(groups: dict, path: Path, palette: Palette | None = None) -> None:
    _save(sparsity_figure(groups, palette), path)


def _plot_energy(points: dict[str, list], path: Path, palette: Palette | None = None) -> None:
    plt = _plt()
    palette = palette or Palette(k[1] for m in points for k, _, _ in points[m])
    titles = {"flops": "energy ∝ training FLOPs", "cpu": "energy ∝ CPU seconds", "joules": "measured joules"}
    panels = [m for m in ("flops", "cpu", "joules") if points.get(m)]
    envs = sorted({k[0] for m in panels for k, _, _ in points[m]})
    markers = dict(zip(envs, "o^sDvP*X"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, layout="constrained")
    for ax, m in zip(axes[0], panels):
        seen = set()
        for (env, method, sp), x, y in points[m]:
            label = f"{method} {sp}" if (method, sp) not in seen else None
            seen.add((method, sp))
            ax.scatter([x], [y], color=palette.color(method), marker=markers[env], s=45, alpha=0.85, label=label)
        ax.set_xscale("log")
        ax.set_xlabel(f"normalised energy ({titles[m]})")
        ax.set_ylabel("normalised performance (score / dense)")
        ax.set_title(f"{titles[m]}; markers: " + ", ".join(f"{markers[e]} {e}" for e in envs), fontsize=8)
    _legend_below(fig, *_unique_legend(axes[0]), 4.2)
    _save(fig, path)


def intervals_figure(est: dict[str, dict], palette: Palette | None = None):
    """IQM and mean with their 95% CIs, one row per method @ sparsity, best at the top. The figure's height
    grows with the rows and its width with the longest label, so the panels keep their width (long labels
    squeezed them to slivers with overlapping ticks)."""
    from matplotlib.ticker import MaxNLocator
    plt = _plt()
    palette = palette or Palette(est)
    keys = sorted(est, key=lambda k: est[k]["iqm"])
    height = 0.32 * len(keys) + 1.3
    fig, axes = plt.subplots(1, 2, figsize=(9, height), sharey=True, layout="constrained")
    for ax, metric in zip(axes, ("iqm", "mean")):
        for i, k in enumerate(keys):
            lo, hi = est[k][f"{metric}_ci"]
            ax.plot([lo, hi], [i, i], lw=6, alpha=0.8, color=palette.color(k), solid_capstyle="butt")
            ax.plot([est[k][metric]], [i], "k|", ms=12)
        ax.set_title(metric.upper() if metric == "iqm" else "Mean")
        ax.set_xlabel("normalised score")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(keys)), keys, fontsize=8)
    axes[0].set_ylim(-0.6, len(keys) - 0.4)
    renderer = fig.canvas.get_renderer()
    label_width = max(t.get_window_extent(renderer).width for t in axes[0].get_yticklabels()) / fig.dpi
    fig.set_size_inches(label_width + 2 * 3.2 + 0.6, height)
    return fig


def _plot_intervals(est: dict[str, dict], path: Path, palette: Palette | None = None) -> None:
    _save(intervals_figure(est, palette), path)


def profiles_figure(matrix: dict[str, np.ndarray], palette: Palette | None = None):
    """rliable's performance profiles: the fraction of runs scoring above each normalised score."""
    from rliable import library as rly
    plt = _plt()
    palette = palette or Palette(matrix)
    top = max(float(v.max()) for v in matrix.values())
    taus = np.linspace(0.0, max(1.2, top * 1.05), 61)
    profiles = {k: rly.score_distributions(v, taus) for k, v in matrix.items()}   # no CIs drawn: no bootstrap
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for k, prof in profiles.items():
        ax.plot(taus, prof, label=k, color=palette.color(k), marker=palette.marker(k), markevery=8, ms=4)
    ax.set_xlabel("normalised score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    _legend_below(fig, *_unique_legend([ax]), 4)
    return fig


def _plot_profiles(matrix: dict[str, np.ndarray], path: Path, palette: Palette | None = None) -> None:
    _save(profiles_figure(matrix, palette), path)
