"""How much of the pathway each score replaces per DAPD mask update, next to the return it reached (issue #10).

    python benchmarks/score_churn.py ~/neuropath-bench/scores

Reads every finished DAPD run's ``pathway.jsonl`` (the mask events the trainer logs) and ``metrics.csv``.
Churn of one update = entries that changed / (2 × active weights): 0 keeps the pathway, 1 replaces all of it
(a changed entry is one weight in or one weight out, so a swap counts twice). Why print it: a score decides
not only which weights a pathway holds but how often it moves them, and weights moved out lose what they
learnt; this puts each score's churn beside its return averaged over runs.
Needs the run folders (records keep only config and metrics).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml


def churn(events: list[dict], net: str) -> tuple[float, int]:
    """Median fraction of ``net``'s pathway replaced per update, and how many updates there were."""
    init = next(e for e in events if e["net"] == net and e["event"] == "init")
    density = float(init["density"])
    active = density * init["changed"] / (1.0 - density)  # init changed = every entry that was switched off
    updates = [e["changed"] / (2.0 * active) for e in events if e["net"] == net and e["event"] == "update"]
    return (float(np.median(updates)) if updates else 0.0), len(updates)


def final_score(metrics: Path, last: int = 10) -> float:
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    return float(np.mean([float(r["return_mean"]) for r in rows[-last:]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path, help="a sweep folder (holds runs/)")
    args = ap.parse_args()
    dense: dict[tuple[str, int], float] = {}
    rows: dict[tuple[str, str], list[tuple[float, float, int, float, int]]] = defaultdict(list)
    for run in sorted((args.sweep / "runs").iterdir()):
        cfg = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else None
        if not cfg or not (run / "metrics.csv").is_file():
            continue
        env, seed = cfg["run"]["env"], int(cfg["run"]["seed"])
        steps = [int(r["step"]) for r in csv.DictReader((run / "metrics.csv").open())]
        if not steps or steps[-1] < int(cfg["run"]["steps"]):
            continue  # unfinished
        score = final_score(run / "metrics.csv")
        pathway = cfg["pathway"]
        method = pathway["pathway"]
        if method == "dense":
            dense[(env, seed)] = score
            continue
        if method != "dapd" or not (run / "pathway.jsonl").is_file():
            continue
        events = [json.loads(line) for line in (run / "pathway.jsonl").read_text().splitlines() if line.strip()]
        actor, n = churn(events, "actor")
        critic, _ = churn(events, "critic")
        rows[(env, pathway["score"])].append((actor, critic, n, score, seed))
    print("| env | score | runs | median churn per update, actor | critic | updates before freezing | % of dense |")
    print("|---|---|---|---|---|---|---|")
    for (env, score), runs in sorted(rows.items(), key=lambda kv: (kv[0][0], -np.mean([r[0] for r in kv[1]]))):
        pct = [100 * r[3] / dense[(env, r[4])] for r in runs if dense.get((env, r[4]), 0) > 0]
        print(f"| {env} | {score} | {len(runs)} | {np.mean([r[0] for r in runs]):.1%} | "
              f"{np.mean([r[1] for r in runs]):.1%} | {np.mean([r[2] for r in runs]):.0f} | "
              + (f"{np.mean(pct):.0f}%" if pct else "–") + " |")


if __name__ == "__main__":
    main()
