"""The score ablation's per-seed tables (issue #10), from a report's scores.csv.

    neuropath report benchmarks/records/scores --versus dapd --out /tmp/scores-report
    python benchmarks/score_table.py /tmp/scores-report/scores.csv

One markdown table per environment: a row per seed, a column per method, each cell the run's score (mean of
its last 10 evaluations) and, in brackets, its % of the same seed's dense run; then the mean over seeds.
The report itself has the aggregates with confidence intervals; this is the view of every run.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

METHOD_ORDER = ("dense", "dapd", "dapd+grad", "dapd+grasp", "dapd+synflow", "dapd+magnitude", "dapd+random",
                "static", "static+grad", "static+grasp", "static+synflow", "static+magnitude", "static+random")


def _method_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _cell(score: float | None, dense: float | None) -> str:
    if score is None:
        return "–"
    # one decimal below 1 in size, so that −0.2 does not print as "−0"; no sign on a percentage that rounds to 0
    text = f"{score:.1f}" if abs(score) < 1 else f"{score:.0f}"
    if dense and dense > 0:
        pct = round(100 * score / dense)
        text += f" ({pct if pct else 0}%)"
    return text.replace("-", "−")


def tables(rows: list[dict]) -> list[str]:
    scores: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        scores[r["env"]][r["method"]][int(r["seed"])] = float(r["score"])
    lines: list[str] = []
    for env in sorted(scores):
        methods = sorted(scores[env], key=_method_key)
        seeds = sorted({s for m in methods for s in scores[env][m]})
        dense = scores[env].get("dense", {})
        lines += [f"| {env} | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for seed in seeds:
            lines.append(f"| seed {seed} | " + " | ".join(_cell(scores[env][m].get(seed), dense.get(seed))
                                                          for m in methods) + " |")
        dense_mean = float(np.mean(list(dense.values()))) if dense else None
        means = [_cell(float(np.mean(list(scores[env][m].values()))), dense_mean) + f" n={len(scores[env][m])}"
                 for m in methods]
        lines += ["| mean | " + " | ".join(means) + " |", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scores_csv", type=Path, help="scores.csv written by `neuropath report`")
    args = ap.parse_args()
    with args.scores_csv.open() as f:
        print("\n".join(tables(list(csv.DictReader(f)))))


if __name__ == "__main__":
    main()
