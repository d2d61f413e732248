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

``--cut DEST``: also keep the runs that have not finished, as far as they got, in another folder (a 1M-step
dense run takes longer than a session, and a session on a new machine loses it). Such a record has a
``cut.json`` (the step it reached, its budget, when it was recorded); `neuropath report` lists it as unfinished
and scores it only in the ``--at`` windows it has passed. A cut record is replaced only by one of the same run
that got further (a run restarted from zero on a new machine never overwrites what the lost one reached), and
removed once the run's finished record is written.

    python benchmarks/run_records.py ~/neuropath-bench/paper1m-dense benchmarks/records/paper1m \
        --cut benchmarks/records/paper1m-cut
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import time
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


def complete_lines(data: bytes) -> bytes:
    """``data`` up to its last newline: a run still training may be writing a row as it is read."""
    return data[:data.rfind(b"\n") + 1]


def reached(metrics: bytes) -> int:
    """The last evaluated step in the text of a metrics.csv; 0 where it has none."""
    rows = list(csv.DictReader(io.StringIO(complete_lines(metrics).decode())))
    try:
        return int(rows[-1]["step"]) if rows else 0
    except (KeyError, TypeError, ValueError):
        return 0


def write_record(out: Path, files: dict[str, bytes]) -> None:
    """A record's files into ``out``, each whole or not at all (a full disk leaves the old one in place)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)


def record_cut(run: Path, out: Path, budget: int) -> str | None:
    """Record the unfinished ``run`` into ``out`` if it got further than the record there: what was done, in a
    line, or None when nothing changed."""
    files = {"config.yaml": (run / "config.yaml").read_bytes(),
             "metrics.csv": complete_lines((run / "metrics.csv").read_bytes())}
    old = out / "metrics.csv"
    step, before = reached(files["metrics.csv"]), reached(old.read_bytes()) if old.is_file() else 0
    if step <= before:                                 # also a run without an evaluation yet (0)
        return f"kept {out} ({before:,} steps; the run is at {step:,})" if step < before else None
    more = extras(run)
    more.pop("flops.json", None)                       # a FLOP count is of a whole budget
    more["cut.json"] = json.dumps({"step": step, "budget": budget,
                                   "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}) + "\n"
    write_record(out, files | {f: t.encode() for f, t in more.items()})
    return f"cut record {out} at {step:,} of {budget:,} steps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path, help="a sweep folder (holds sweep.yaml and runs/)")
    ap.add_argument("dest", type=Path, help="where the records go, one folder per run")
    ap.add_argument("--cut", type=Path, metavar="DEST", help="also record the unfinished runs, into this folder")
    args = ap.parse_args()
    kept = changed = 0
    for spec in merge_into(args.sweep, None, write=False):
        run = args.sweep / "runs" / spec.name
        budget = int(spec.settings["steps"])
        if status(run, budget) != "finished":
            if args.cut and (run / "metrics.csv").is_file() and (said := record_cut(run, args.cut / spec.name, budget)):
                print(said)
            continue
        out = args.dest / spec.name
        more = extras(run)
        same = all((out / f).is_file() and (out / f).read_bytes() == (run / f).read_bytes() for f in FILES)
        if not (same and all((out / f).is_file() for f in more)):
            if out.exists() and not same:
                changed += 1
                print(f"replaced {out} (its run's numbers changed)")
            write_record(out, {f: (run / f).read_bytes() for f in FILES} | {f: t.encode() for f, t in more.items()})
            kept += 1
        if args.cut and (args.cut / spec.name).is_dir():
            shutil.rmtree(args.cut / spec.name)
            print(f"removed {args.cut / spec.name} (its run finished: {out})")
    print(f"{kept} record(s) written ({changed} replaced) to {args.dest}")


if __name__ == "__main__":
    main()
