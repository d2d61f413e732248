"""IQM and probabilities of improvement for the score ablation, from its per-seed tables in RESULTS.md.

Why this exists: `neuropath report` gives P(X > reference) for the leading methods only and has no notion of
"the same score's static mask". This script reads the per-seed tables of benchmarks/RESULTS.md ("The score
ablation" section: one table per environment, one row per seed, cells "score (% of dense)"), applies the
report's own normalisation and rliable statistics, and prints P(X > dapd) for every method and P(DAPD > static)
per score. It was first written to give a verdict before 18 lost seed-0 runs were rerun (their numbers then
existed only in the tables); since 2026-11-29 every cell of the tables is a record.

    python benchmarks/score_ablation_iqm.py                                      # the tables as they are
    python benchmarks/score_ablation_iqm.py --records benchmarks/records/scores  # records' unrounded scores

With ``--records``, every (environment, method, seed) of the tables that has a finished record takes the
record's score instead of the table's (seeds the tables do not have are ignored: the verdict is over seeds
0-2; on another CPU a sparse run is another sample: docs/decisions.md, "Same seed, same machine").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neuropath.experiments.report import (Norm, _probabilities, _random_zero, improvement_over,
                                          interval_estimates, load_runs)

SECTION = "## The score ablation"
ENVS = ("HalfCheetah-v5", "Hopper-v5")
REPS = 2000


def per_seed_scores(results: str) -> dict[str, dict[str, list[float]]]:
    """{env: {method: [score of seed 0, 1, 2]}} from the section's tables ("dapd (snip)" read as "dapd")."""
    start = results.index(SECTION)
    section = results[start:results.index("\n## ", start + 1)]
    out: dict[str, dict[str, list[float]]] = {}
    for env in ENVS:
        lines = section[section.index(f"| {env} | dense"):].splitlines()
        methods = [c.strip().replace(" (snip)", "") for c in lines[0].strip("|").split("|")][1:]
        for line in lines[2:]:
            if not line.startswith("| seed"):
                break
            cells = [c.strip() for c in line.strip("|").split("|")][1:]
            for method, cell in zip(methods, cells):
                out.setdefault(env, {}).setdefault(method, []).append(float(cell.split(" (")[0].replace("−", "-")))
    return out


def normalise(scores: dict[str, dict[str, list[float]]]) -> dict[str, np.ndarray]:
    """rliable's ``{method@95%: [seeds, envs]}``, normalised as `neuropath report` does: ÷ dense's mean, or
    (score − random) / (dense − random) where scores go below 0."""
    norm = {}
    for env in ENVS:
        dense = float(np.mean(scores[env]["dense"]))
        if min(min(v) for v in scores[env].values()) >= 0:
            norm[env] = Norm(0.0, dense)
        else:
            zero = _random_zero(env)
            norm[env] = Norm(zero, dense - zero)
    seeds = min(len(v) for env in ENVS for v in scores[env].values())
    return {f"{m}@95%": np.array([[norm[e](scores[e][m][i]) for e in ENVS] for i in range(seeds)])
            for m in scores[ENVS[0]]}


def with_records(scores: dict[str, dict[str, list[float]]], records: Path) -> int:
    """Replace table scores by the records' (same environment, method, seed); returns how many were replaced."""
    runs, _ = load_runs(records)
    n = 0
    for run in runs:
        per_seed = scores.get(run.env, {}).get(run.method)
        if per_seed is not None and run.seed < len(per_seed):
            n += abs(per_seed[run.seed] - run.score) >= 1     # the tables round to whole returns
            per_seed[run.seed] = run.score
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="?", default="benchmarks/RESULTS.md")
    ap.add_argument("--records", type=Path, help="a folder of finished runs whose scores replace the tables'")
    args = ap.parse_args()
    scores = per_seed_scores(Path(args.results).read_text())
    if args.records:
        print(f"{with_records(scores, args.records)} table scores differ from their records and were replaced")
    matrix = normalise(scores)
    n = next(iter(matrix.values())).shape[0]
    est = interval_estimates(matrix, REPS)
    imp = improvement_over(matrix, "dapd", REPS)
    print(f"{n} seeds × {len(ENVS)} environments per method, {REPS} bootstrap samples\n")
    print("| method @95% | IQM [95% CI] | P(X > dapd) [95% CI] |\n|---|---|---|")
    for key in sorted(est, key=lambda k: -est[k]["iqm"]):
        e, i = est[key], imp.get(key)
        p = f"{i['p']:.2f} [{i['ci'][0]:.2f}, {i['ci'][1]:.2f}]" if i else "–"
        print(f"| {key.split('@')[0]} | {e['iqm']:.3f} [{e['iqm_ci'][0]:.3f}, {e['iqm_ci'][1]:.3f}] | {p} |")
    pairs = {m.split("@")[0][len("dapd+"):] or "snip": (matrix[m], matrix["static" + m[len("dapd"):]])
             for m in matrix if m.startswith("dapd") and "static" + m[len("dapd"):] in matrix}
    print("\n| score | P(DAPD > static) [95% CI] |\n|---|---|")
    for score, v in _probabilities(pairs, REPS, 0).items():
        print(f"| {score} | {v['p']:.2f} [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}] |")


if __name__ == "__main__":
    main()
