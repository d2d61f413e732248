"""What each score's pathways look like, next to the return they reached (issue #10): how much of the pathway a
DAPD mask update replaces, and which inputs the final pathway cuts off.

    python benchmarks/score_pathways.py ~/neuropath-bench/scores

Reads every finished run's ``pathway.jsonl`` (the mask events the trainer logs), ``metrics.csv`` and last
checkpoint (its masks). Churn of one update = entries that changed / (2 × active weights): 0 keeps the pathway, 1 replaces all of it
(a changed entry is one weight in or one weight out, so a swap counts twice). Why print it: a score decides
not only which weights a pathway holds but how often it moves them, and weights moved out lose what they
learnt; this puts each score's churn beside its return averaged over runs.
Cut-off inputs: observation inputs of the actor, and action inputs of the critic that neither of SAC's twin Q
networks keeps a path from (the actor's gradient flows through min(Q1, Q2), so an action both cut off gets none).
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

from neuropath.pathways.masks import reachable_inputs
from neuropath.training import checkpoint


def churn(events: list[dict], net: str) -> tuple[float, int]:
    """Median fraction of ``net``'s pathway replaced per update, and how many updates there were."""
    init = next(e for e in events if e["net"] == net and e["event"] == "init")
    density = float(init["density"])
    active = density * init["changed"] / (1.0 - density)  # init changed = every entry that was switched off
    updates = [e["changed"] / (2.0 * active) for e in events if e["net"] == net and e["event"] == "update"]
    return (float(np.median(updates)) if updates else 0.0), len(updates)


def cut_inputs(run: Path) -> tuple[int, int, int, int]:
    """(actor's observation inputs cut off, observation inputs, action inputs cut off in both Q networks, actions)."""
    ckpt = checkpoint.latest(run)
    algo = checkpoint.load_state(ckpt)["algo"]
    meta = json.loads((ckpt / "meta.json").read_text())

    def reach(net: str):
        chain = sorted((k for k in algo if k.startswith(net + ".") and k.endswith(".mask")),
                       key=lambda k: int(k.split(".")[-2]))
        return reachable_inputs([algo[k][0] for k in chain])

    obs, act = meta["obs_dim"], meta["act_dim"]
    actions_seen = reach("critic.q1")[obs:] | reach("critic.q2")[obs:]
    return obs - int(reach("actor.net").sum()), obs, act - int(actions_seen.sum()), act


def final_score(metrics: Path, last: int = 10) -> float:
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    return float(np.mean([float(r["return_mean"]) for r in rows[-last:]]))


def _pct(scores: list[tuple[float, int]], env: str, dense: dict[tuple[str, int], float]) -> str:
    pct = [100 * score / dense[(env, seed)] for score, seed in scores if dense.get((env, seed), 0) > 0]
    return f"{np.mean(pct):.0f}%" if pct else "–"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path, help="a sweep folder (holds runs/)")
    args = ap.parse_args()
    dense: dict[tuple[str, int], float] = {}
    churns: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    cuts: dict[tuple[str, str], list[tuple[int, int, int, int]]] = defaultdict(list)
    scores: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
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
        if pathway["pathway"] == "dense":
            dense[(env, seed)] = score
            continue
        key = (env, f"{pathway['pathway']}+{pathway['score']}")
        scores[key].append((score, seed))
        cuts[key].append(cut_inputs(run))
        if pathway["pathway"] == "dapd":
            events = [json.loads(line) for line in (run / "pathway.jsonl").read_text().splitlines() if line.strip()]
            (actor, n), (critic, _) = churn(events, "actor"), churn(events, "critic")
            churns[key].append((actor, critic, n))

    print("| env | DAPD score | runs | median churn per update, actor | critic | updates before freezing | % of dense |")
    print("|---|---|---|---|---|---|---|")
    for key, runs in sorted(churns.items(), key=lambda kv: (kv[0][0], -np.mean([r[0] for r in kv[1]]))):
        print(f"| {key[0]} | {key[1].split('+')[1]} | {len(runs)} | {np.mean([r[0] for r in runs]):.1%} | "
              f"{np.mean([r[1] for r in runs]):.1%} | {np.mean([r[2] for r in runs]):.0f} | "
              f"{_pct(scores[key], key[0], dense)} |")
    print()
    print("| env | method | runs | observation inputs the actor cuts off (per run) | action inputs both Q networks "
          "cut off (per run) | % of dense |")
    print("|---|---|---|---|---|---|")
    for key, runs in sorted(cuts.items()):
        print(f"| {key[0]} | {key[1]} | {len(runs)} | {', '.join(f'{r[0]}/{r[1]}' for r in runs)} | "
              f"{', '.join(f'{r[2]}/{r[3]}' for r in runs)} | {_pct(scores[key], key[0], dense)} |")


if __name__ == "__main__":
    main()
