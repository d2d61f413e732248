"""Summarise `neuropath overlap --csv` files: how close each score's pathway is to SNIP's, and how much
each score's own pathway moves between checkpoints, over a DAPD warm-up.

    neuropath train --env Hopper-v5 --pathway dapd --steps 30000 --checkpoint-every 3000 \
        --keep-checkpoints 12 --run-dir RUN
    neuropath overlap RUN --csv RUN-overlap.csv
    python benchmarks/score_overlap.py RUN-overlap.csv [more.csv ...]

Prints, per file, one markdown table: rows = checkpoints, columns = Jaccard(snip, score) for each score
(actor / critic), then the same score's Jaccard with its own mask at the previous checkpoint (mean of
actor and critic). Two random 5% masks have Jaccard 0.026.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

OTHERS = ("grad", "grasp", "synflow", "magnitude", "random", "run")
MOVING = ("snip", "grad", "grasp", "synflow", "magnitude", "run")


def summary(path: Path) -> str:
    pair: dict[tuple[int, str, str], float] = {}
    moved: dict[tuple[int, str], list[float]] = defaultdict(list)
    for r in csv.DictReader(path.open()):
        if r["layer"] != "all":
            continue
        step, j = int(r["step"]), float(r["jaccard"])
        if r["b"].endswith("@previous"):
            moved[step, r["a"]].append(j)
        elif "snip" in (r["a"], r["b"]):
            other = r["b"] if r["a"] == "snip" else r["a"]
            pair[step, r["net"], other] = j
    steps = sorted({s for s, _, _ in pair})
    head = ["step"] + [f"snip∩{o} (a/c)" for o in OTHERS] + [f"{m} moved" for m in MOVING]
    lines = [f"### {path.name}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for s in steps:
        cells = [str(s)]
        for o in OTHERS:
            a, c = pair.get((s, "actor", o)), pair.get((s, "critic", o))
            cells.append("–" if a is None else f"{a:.2f} / {c:.2f}")
        for m in MOVING:
            v = moved.get((s, m))
            cells.append(f"{sum(v) / len(v):.2f}" if v else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", nargs="+", type=Path)
    for path in p.parse_args().csv:
        print(summary(path))
        print()


if __name__ == "__main__":
    main()
