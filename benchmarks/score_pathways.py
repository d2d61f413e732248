"""What each score's pathways look like, next to the return they reached (issue #10): how much of the pathway a
DAPD mask update replaces, and which inputs the final pathway cuts off.

    python benchmarks/score_pathways.py ~/neuropath-bench/scores

Reads every finished run (as `neuropath report` finds and scores them): its ``pathway.jsonl`` (the mask events
the trainer logs) and last checkpoint (its masks). Churn of one update = entries that changed / (2 × active weights): 0 keeps the pathway, 1 replaces all of it
(a changed entry is one weight in or one weight out, so a swap counts twice). Why print it: a score decides
not only which weights a pathway holds but how often it moves them, and weights moved out lose what they
learnt; this puts each score's churn beside its return averaged over runs.
Cut-off inputs: observation inputs of the actor, and action inputs of the critic that neither of SAC's twin Q
networks keeps a path from (the actor's gradient flows through min(Q1, Q2), so an action both cut off gets none).
Needs the run folders (records keep only config and metrics).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from neuropath.experiments.report import load_runs
from neuropath.pathways.masks import reachable_inputs
from neuropath.training import checkpoint
from neuropath.training.logging import read_jsonl


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
    runs, _ = load_runs(args.sweep / "runs")          # finished runs, scored as the report scores them
    for r in runs:
        if r.method == "dense":
            dense[(r.env, r.seed)] = r.score
            continue
        key = (r.env, r.method if "+" in r.method else f"{r.method}+snip")
        scores[key].append((r.score, r.seed))
        cuts[key].append(cut_inputs(r.path))
        if r.method.startswith("dapd"):
            events = read_jsonl(r.path / "pathway.jsonl")
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
