"""Keep the numbers of a sweep's finished runs in the repository: each run's ``config.yaml`` and
``metrics.csv`` (a few KB), which is all `neuropath report` reads for returns, IQM and curves.

Why: a sweep of 72 half-hour runs outlives several sessions, and a session can start on a fresh machine
where the run folders (checkpoints, replay buffers, TensorBoard logs: tens of MB each) are gone; the
score ablation's seed-0 folders were lost that way. The records keep what a finished run measured, not
the run: no checkpoint, but the run's training FLOP count (`flops.json`, counted from its checkpoint as
`neuropath flops` does) and its pathway's freeze events (`freeze.jsonl`, from `pathway.jsonl`), so that
`neuropath report` on the records still gives FLOPs, CPU seconds and the freeze markers.

    python benchmarks/run_records.py ~/neuropath-bench/scores benchmarks/records/scores
    neuropath report benchmarks/records/scores --versus dapd        # the same tables as on the sweep

A record that exists is left alone unless its run's metrics differ (then it is replaced and said so).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from neuropath.experiments.sweep import merge_into, status
from neuropath.training.logging import read_jsonl

FILES = ("config.yaml", "metrics.csv")


def extras(run: Path) -> dict[str, str]:
    """What a record keeps beside the two files: ``freeze.jsonl`` (the freeze events of pathway.jsonl) and
    ``flops.json`` (the training FLOPs of the finished run), each only where the run has it."""
    out = {}
    if (run / "pathway.jsonl").is_file():
        freezes = [e for e in read_jsonl(run / "pathway.jsonl") if e.get("event") == "freeze"]
        out["freeze.jsonl"] = "".join(json.dumps(e) + "\n" for e in freezes)
    try:
        from neuropath.efficiency.counted_flops import count_run
        out["flops.json"] = json.dumps({"training_flops": count_run(run)[2]}) + "\n"
    except Exception:  # noqa: BLE001 - a run without a readable checkpoint has no count
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path, help="a sweep folder (holds sweep.yaml and runs/)")
    ap.add_argument("dest", type=Path, help="where the records go, one folder per run")
    args = ap.parse_args()
    kept = changed = 0
    for spec in merge_into(args.sweep, None, write=False):
        run = args.sweep / "runs" / spec.name
        if status(run, int(spec.settings["steps"])) != "finished":
            continue
        out = args.dest / spec.name
        more = extras(run)
        same = all((out / f).is_file() and (out / f).read_bytes() == (run / f).read_bytes() for f in FILES)
        if same and all((out / f).is_file() for f in more):
            continue
        if out.exists() and not same:
            changed += 1
            print(f"replaced {out} (its run's numbers changed)")
        out.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            shutil.copyfile(run / f, out / f)
        for f, text in more.items():
            (out / f).write_text(text)
        kept += 1
    print(f"{kept} record(s) written ({changed} replaced) to {args.dest}")


if __name__ == "__main__":
    main()
