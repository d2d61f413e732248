"""What a run writes as it goes: TensorBoard scalars, ``metrics.csv`` (one row per
evaluation), ``pathway.jsonl`` (one line per mask event) and the progress bar.

On resume, rows past the checkpoint's step are dropped and TensorBoard purges its events
past that step, so a resumed run shows one continuous curve.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from ..pathways.masks import cut_off_inputs, ranges
from .checkpoint import write_text_atomic

EVAL_FIELDS = ["step", "return_mean", "return_std", "return_min", "return_max", "length_mean",
               "phase", "actor_density", "critic_density", "wall_time", "cpu_seconds", "energy_j",
               "energy_mode"]


def read_csv(path: Path) -> list[dict[str, str]]:
    """The finished rows of a CSV log. A last row cut by a crash mid-write (no line end, or fields missing) is
    left out: it was never a finished row (the checkpoint of its step comes after it), and a resume writes it
    again. Without this, resume and inspect ended in a TypeError on its missing fields."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        text = f.read()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if rows and (not text.endswith("\n") or None in rows[-1] or None in rows[-1].values()):
        rows.pop()
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines log; a last line cut mid-write (unterminated, not valid JSON) is left out."""
    if not Path(path).is_file():
        return []
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1 and not line.endswith("\n"):
                break
            raise
    return out


def truncate_after(run_dir: Path, step: int, fields: list[str] = EVAL_FIELDS) -> list[dict[str, str]]:
    """Drop log rows written after ``step`` (by a run killed after its last checkpoint); returns the metrics
    rows kept. ``metrics.csv`` is rewritten with the loop's columns ``fields`` (an older run's rows get
    empty new columns)."""
    run_dir = Path(run_dir)
    rows = [r for r in read_csv(run_dir / "metrics.csv") if int(r["step"]) <= step]
    if (run_dir / "metrics.csv").is_file():
        lines = [",".join(fields)] + [",".join(r.get(k) or "" for k in fields) for r in rows]
        write_text_atomic(run_dir / "metrics.csv", "\n".join(lines) + "\n")
    for name in ("pathway.jsonl", "episodes.csv"):
        path = run_dir / name
        if not path.is_file():
            continue
        kept = []
        for line in path.read_text().splitlines(keepends=True):
            if not line.endswith("\n"):        # cut mid-write by a crash: never a finished row, and appending
                continue                        # after it would glue the next row onto it
            if name.endswith(".jsonl"):
                ok = line.strip() and json.loads(line)["step"] <= step
            else:
                head = line.split(",", 1)[0]
                ok = not head.isdigit() or int(head) <= step
            if ok:
                kept.append(line)
        write_text_atomic(path, "".join(kept))
    return rows

def cut_off_warning(name: str, net, cut: dict[str, list[int]]) -> str:
    """The warning for a fixed pathway that leaves inputs of ``net`` with no path of kept weights to the output.

    Why warn: a top-k over a whole network can do that while keeping every layer non-empty, and the network
    is then blind to those inputs for the rest of the run (the score ablation's static SNIP masks of
    HalfCheetah cut off half the observations and most actions, and never learnt)."""
    members = getattr(net, "pathway_members", ())
    where = "; ".join(f"{member + ' ' if member in members else ''}inputs {ranges(idx)}" for member, idx in cut.items())
    return (f"warning: the {name}'s fixed pathway leaves inputs with no path to the output ({where}); "
            "the network cannot react to them (`neuropath inspect` shows the pathway)")


class RunLogger:
    """Every file a run writes as it goes. ``fields``: the loop's ``metrics.csv`` columns; ``episodes``:
    whether it has training episodes to log (offline runs have none)."""

    def __init__(self, run_dir: Path, *, start_step: int, total_steps: int, progress: bool,
                 hparams: dict[str, dict[str, Any]] | None = None, fields: list[str] = EVAL_FIELDS,
                 episodes: bool = True, desc: str | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when a run starts

        self.run_dir = Path(run_dir)
        self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step if start_step else None)
        if hparams and not start_step:     # the settings as a text table, as CleanRL and SB3 log them
            rows = "\n".join(f"|{section}.{k}|{v}|" for section, values in hparams.items()
                             for k, v in values.items())
            self.tb.add_text("hyperparameters", "|setting|value|\n|-|-|\n" + rows, 0)
        new = not (self.run_dir / "metrics.csv").is_file()
        # `truncate_after` has rewritten an existing file with today's columns (older runs'
        # rows get empty new columns), so one header fits every row.
        self._fields = list(fields)
        self._metrics = open(self.run_dir / "metrics.csv", "a", newline="")
        self._writer = csv.DictWriter(self._metrics, fieldnames=self._fields)
        if new:
            self._writer.writeheader()
        self._pathway = open(self.run_dir / "pathway.jsonl", "a")
        self._episodes = None
        if episodes:
            new_ep = not (self.run_dir / "episodes.csv").is_file()
            self._episodes = open(self.run_dir / "episodes.csv", "a")
            if new_ep:
                self._episodes.write("step,return,length\n")
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                            file=sys.stderr, smoothing=0.05, desc=desc)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.tb.add_scalar(key, value, step)

    def episode(self, step: int, ret: float, length: int) -> None:
        self._episodes.write(f"{step},{ret:.6g},{length}\n")
        self.tb.add_scalar("charts/episodic_return", ret, step)
        self.tb.add_scalar("charts/episodic_length", length, step)

    def evaluation(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: row.get(k, "") for k in self._fields})
        self._metrics.flush()
        if "return_mean" in row:
            self.tb.add_scalar("eval/return", row["return_mean"], row["step"])

    def pathway_event(self, event: dict[str, Any]) -> None:
        self._pathway.write(json.dumps(event) + "\n")
        self._pathway.flush()
        if "changed" in event:
            # (the density itself is logged every --log-every steps as pathway/<net>_density)
            changed = event["changed"]          # a multi-task network's: one count per task
            self.tb.add_scalar(f"pathway/{event['net']}/changed", sum(changed) if isinstance(changed, list) else changed,
                               event["step"])
        if event.get("event") == "freeze":
            self.tb.add_scalar(f"pathway/{event['net']}/frozen_at", event.get("frozen_at", event["step"]),
                               event["step"])

    def freeze(self, step: int, name: str, pw) -> dict[str, list[int]]:
        """Pathway ``pw`` of network ``name`` froze: the event, with the inputs its final pathway cuts off
        (`cut_off_warning`) listed there and in one warning line; returns them per member network."""
        cut = cut_off_inputs(pw.net)
        self.pathway_event({"step": step, "net": name, "event": "freeze", "frozen_at": pw.schedule.frozen_at,
                            "reason": pw.schedule.freeze_reason, **({"cut_off": cut} if cut else {})})
        if cut:
            self.warn(cut_off_warning(name, pw.net, cut))
        return cut

    def warn(self, message: str) -> None:
        """One line on stderr, above the progress bar if there is one."""
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def tick(self) -> None:
        """One environment step on the progress bar (tqdm throttles the redraws itself)."""
        if self.bar is not None:
            self.bar.update(1)

    def progress(self, step: int, postfix: dict[str, str]) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(postfix, refresh=True)

    def flush(self) -> None:
        if self._episodes is not None:
            self._episodes.flush()
        self.tb.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for f in (self._metrics, self._pathway, self._episodes):
            if f is not None:
                f.close()
        self.tb.close()
