"""The results page: one row per claim, each number computed from the committed run records when the page is built.

benchmarks/RESULTS.md is a lab notebook ordered by issue and date, the log of how each number came about.
Readers need the other cut: per claim (the paper's first, then our own checks) the budget, our number, the
paper's, a verdict by a stated rule, the command that reproduces it and links to its records and notebook
section. This script writes that page, benchmarks/README.md, from benchmarks/records (each run's config.yaml
and metrics.csv, see benchmarks/run_records.py). It loads and scores runs through `neuropath report`'s own
functions, and its claim list holds no result of ours, so the page cannot keep a copied number: a claim
without records says "not yet measured", and the next build picks up new records.

    python benchmarks/results_page.py [--records benchmarks/records] [--out benchmarks/README.md]
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import json
import re
import shlex
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from neuropath.errors import UsageError
from neuropath.experiments.report import (LAST_EVALS, MIN_RUNS_FOR_VERDICT, RunResult, group_runs, load_all_runs,
                                          interval_estimates, run_settings, score_decimals,
                                          split_variants, steps_text, window_runs)
from neuropath.experiments.sweep import Grid, split_method
from neuropath.training.config import Config

HERE = Path(__file__).resolve().parent
REGENERATE = "python benchmarks/results_page.py"
BENCH = "~/neuropath-bench"
"""where the sweeps run (outside the repository), as in RESULTS.md"""

SWEEPS_OF = "Sweeps of records/"
"""the heading of a records folder's commands in "How to reproduce" (claims link to it)"""
CUT = "-cut"
"""``<folder>-cut`` holds ``<folder>``'s unfinished runs as far as they got (run_records.py ``--cut``): they count in
the step-window claims they have passed, never in a final score"""
MUJOCO = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid", "Swimmer", "Reacher", "InvertedPendulum")


# ---- the claims ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """One side of a comparison: a method's runs in one records folder under benchmarks/records (``None``: runs
    of this kind are not kept as records, so the claim cannot be measured from them yet)."""
    folder: str | None
    method: str
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.method

    @property
    def sparsity(self) -> str:
        """The sparsity label `load_runs` gives: every sparse claim here is at keep 0.05 for actor and critic."""
        return "0%" if self.method == "dense" else "95%"


@dataclass(frozen=True)
class Claim:
    """A claim of the form "``method`` above ``versus``" in one environment at one budget, with what the paper
    says about it. Nothing of ours is stored here: the page computes it from the records."""
    key: str                     # stable id (tests, the page's anchors)
    text: str
    env: str                     # as `load_runs` labels it ("ALE/Pong-v5 (dqn)" for a non-SAC algorithm)
    paper_env: str               # what the paper ran
    method: Side
    versus: Side
    steps: int | None            # the runs' budget; None where the paper's is not known and nothing is kept
    paper: str                   # the paper's number and its source
    section: str                 # the start of the RESULTS.md heading behind it
    command: str = ""            # what reproduces it; empty: the sweep derived from its records' configs
    paper_claim: bool = True
    window: tuple[int, int] | None = None     # score on the evaluations in [start, end] (a point of the curve)
    metric: str = "score"        # "score" (mean of the last LAST_EVALS evaluations) or "flops" (training FLOPs)
    factor: float = 1.0          # flops: how many times fewer FLOPs the claim says the method needs
    budget: str = ""             # words about the budget beside the steps
    note: str = ""


PAPER_NOTES = "PAPER.md (the project's notes on the paper's public material: poster, code, abstracts)"
NOT_FOUND = "no number in the paper's public material (its main table is an image; PAPER.md §3.1)"
PAPER1M = ("`bash benchmarks/paper1m.sh`, then `python benchmarks/run_records.py ~/neuropath-bench/paper1m "
           "benchmarks/records/paper1m` (and the same for `~/neuropath-bench/paper1m-dense`)")
SWEEP_1M = ("`neuropath sweep ~/neuropath-bench/paper1m --envs {envs} --methods {methods} --keep 0.05 --seeds 0 1 2 "
            "--steps 1000000 --set checkpoint_every=20000`, then `python benchmarks/run_records.py "
            "~/neuropath-bench/paper1m benchmarks/records/paper1m`")
S_1M = "The paper's MuJoCo claims at 1M steps"
S_ABLATION = "The score ablation: DAPD and static masks with each score"
S_ENTRY = "Quick feedback, 100k steps"
S_1M_HC = "The 1M-step study, restarted 2026-12-02 19:16"
S_1M_HOPPER = "The 1M-step study, 2026-12-02 22:32"
NO_MT_RECORDS = ("multi-task and offline runs are not kept as records, and `neuropath report` does not read them "
                 "yet; the notebook section has a reduced-budget run")
ATARI_BUDGET = "10M frames assumed: the paper's frame count is not in its public material"


def _key(env: str) -> str:
    return env.split("-")[0].lower()


def _dense_1m(env: str, paper: str, command: str = PAPER1M) -> Claim:
    return Claim(f"1m-dense-{_key(env)}", "DAPD at 95% sparsity scores above SAC-Dense", env,
                 env.replace("-v5", "-v2"), Side("paper1m", "dapd"), Side("paper1m", "dense"), 1_000_000, paper,
                 S_1M, command)


def _dst_1m(method: str, name: str, paper: str) -> Claim:
    return Claim(f"1m-{method}-halfcheetah", f"DAPD at 95% sparsity scores above {name} at 95%", "HalfCheetah-v5",
                 "HalfCheetah-v2", Side("paper1m", "dapd"), Side("paper1m", method), 1_000_000, paper,
                 "Comparison at 95% sparsity, 100k steps", SWEEP_1M.format(envs="HalfCheetah-v5", methods=method),
                 note=f"ours is neuropath's {name} on SAC; the paper ran the official RLx2 code (PAPER.md §5)")


def _atari(game: str, x: str, y: str, paper: str) -> Claim:
    names = {"dapd": "DQN with DAPD (95% sparse fully connected layers)", "dense": "dense DQN"}
    return Claim(f"atari-{game.lower()}", f"{names[x]} scores above {names[y]}", f"ALE/{game}-v5 (dqn)",
                 f"{game}NoFrameskip-v4" if game != "DemonAttack" else "DemonAttack-v4",
                 Side("atari", x), Side("atari", y), 2_500_000, paper + " (poster Table 1; PAPER.md §3.8)",
                 "Atari DQN on a lent GPU", "none yet: about 10 GPU-hours per run at the notebook's rate",
                 budget=ATARI_BUDGET)


def _own(key: str, text: str, env: str, method: Side, versus: Side, section: str, steps: int = 100_000) -> Claim:
    return Claim(key, text, env, "–", method, versus, steps, "– (our check; the paper reports 1M-step runs)",
                 section, paper_claim=False)


def _own_both(key: str, text: str, method: Side, versus: Side, section: str) -> list[Claim]:
    """A check of ours on both environments the 100k records hold: two rows, as claims are judged per env."""
    return [_own(f"{key}-{_key(env)}", text, env, method, versus, section) for env in ("HalfCheetah-v5", "Hopper-v5")]


CLAIMS: list[Claim] = [
    _dense_1m("HalfCheetah-v5", "DAPD ≈ 9000 vs dense ≈ 8500 (poster Fig. 4, read by eye, ±200; PAPER.md §3.2); "
              "the paper: 5 seeds, last 10 evaluations"),
    _dense_1m("Hopper-v5", NOT_FOUND),
    _dense_1m("Walker2d-v5", NOT_FOUND, command=SWEEP_1M.format(envs="Walker2d-v5", methods="dense dapd")),
    _dense_1m("Ant-v5", NOT_FOUND, command=SWEEP_1M.format(envs="Ant-v5", methods="dense dapd")),
    _dst_1m("rigl", "RigL", "DAPD ≈ 9000 vs RigL ≈ 4100 (poster Fig. 4, by eye; PAPER.md §3.2)"),
    _dst_1m("rlx2", "RLx2", "DAPD ≈ 9000 vs RLx2 ≈ 2300 (poster Fig. 4, by eye; PAPER.md §3.2)"),
    Claim("250k-dense-halfcheetah", "DAPD at 95% is ahead of SAC-Dense early in training (250k–300k steps)",
          "HalfCheetah-v5", "HalfCheetah-v2", Side("paper1m", "dapd"), Side("paper1m", "dense"), 1_000_000,
          "at 250k: DAPD ≈ 6350 vs dense ≈ 5550 (box medians, poster Fig. 5, by eye; PAPER.md §3.3)", S_1M,
          PAPER1M, window=(250_000, 300_000), budget="scored on the evaluations at 250k–300k steps"),
    *[Claim(f"flops-{_key(env)}", "DAPD at 95% needs ≥ 20× fewer training FLOPs than SAC-Dense",
            env, "–", Side("paper1m", "dapd"), Side("paper1m", "dense"), 1_000_000,
            "\"20x increase in energy efficiency … through FLOP count reduction\" (poster; MT10 Table 2: 339K vs "
            "16.9k forward FLOPs; PAPER.md §3.10)", "FLOPs of the comparison runs", PAPER1M, metric="flops",
            factor=20.0, note="training FLOPs of the whole run (`flops.json` of a record), mask scoring included")
      for env in ("HalfCheetah-v5", "Hopper-v5")],
    Claim("mt10-online", "SAC-DAPD (a 5% pathway per task) reaches a higher MT10 success rate than MT-SAC (dense)",
          "MetaWorld MT10", "MetaWorld MT10", Side(None, "dapd"), Side(None, "dense", "MT-SAC"), 1_000_000,
          "77 ± 1.3 vs 49.0 ± 7.3 % success (poster Table 2; PAPER.md §3.5); CARE's 84 ± 5.1 is above both",
          "MT10, reduced budget", "`python benchmarks/mt10.py --steps 1000000`",
          budget="per task, as the `mt10-*` presets", note=NO_MT_RECORDS),
    *[Claim(f"offline-mt10-{algo.lower()}", f"Offline NPF (5% per task) with {algo} reaches a higher MT10 success "
            f"rate than dense multi-task {algo}, expert data", *["MetaWorld MT10 (offline)"] * 2,
            Side(None, "npf", "NPF"), Side(None, "dense", "MT"), None,
            f"{paper} % success (poster Table 2; PAPER.md §3.6)", "Offline MT10 on expert data",
            "`neuropath dataset make MT10 expert --transitions 100000`, `python benchmarks/offline_mt10.py`",
            budget="gradient updates: the paper's count is not published", note=NO_MT_RECORDS)
      for algo, paper in (("BCQ", "100 ± 0.0 vs 81.5 ± 24.15 (MHMT 95.9 ± 10.44)"),
                          ("IQL", "97.3 ± 7.17 vs 79.1 ± 26.81 (MHMT 96.5 ± 7.10)"))],
    _atari("DemonAttack", "dapd", "dense", "20803.33 ± 3273.07 vs 17670.33 ± 2829.91"),
    _atari("Breakout", "dapd", "dense", "384.0 ± 15.80 vs 346.66 ± 12.21"),
    _atari("Pong", "dense", "dapd", "dense 20.36 ± 0.58 vs DAPD 19.09 ± 0.77 (the paper's one loss)"),
    *_own_both("100k-dense", "DAPD at 95% scores above dense at 100k steps",
           Side("scores", "dapd"), Side("scores", "dense"), S_ABLATION),
    *_own_both("100k-static", "DAPD (a mask adapted during a warm-up) scores above a static SNIP mask",
           Side("scores", "dapd"), Side("scores", "static"), S_ABLATION),
    *_own_both("100k-grad", "DAPD scoring with |gradient| (dapd+grad) scores above DAPD with SNIP",
           Side("scores", "dapd+grad"), Side("scores", "dapd"), S_ABLATION),
    *_own_both("100k-authors", "The authors' DAPD (dapd@authors) scores above ours (dapd) at 100k steps",
           Side("entry100k", "dapd@authors"), Side("entry100k", "dapd"), S_ENTRY),
    *_own_both("100k-entry-rule", "Our entry rule (Adam's global step) scores above own-age (dapd@own-age)",
           Side("entry100k", "dapd"), Side("entry100k", "dapd@own-age"), S_ENTRY),
    *_own_both("100k-eval-first", "Evaluating before a due mask update (eval-first, today's default) scores "
           "above mask-first", Side("entry100k", "dapd", "dapd eval-first (entry100k)"),
           Side("scores", "dapd", "dapd mask-first (scores)"), S_ENTRY),
    _own("1m-authors-halfcheetah", "The authors' DAPD (dapd@authors) scores above ours (dapd) at 1M steps",
         "HalfCheetah-v5", Side("paper1m", "dapd@authors"), Side("paper1m", "dapd"), S_1M_HC, 1_000_000),
    _own("1m-authors-hopper", "The authors' DAPD (dapd@authors) scores above ours (dapd) at 1M steps",
         "Hopper-v5", Side("paper1m", "dapd@authors"), Side("paper1m", "dapd"), S_1M_HOPPER, 1_000_000),
]


# ---- the verdict ---------------------------------------------------------------------------------------------

VERDICT_RULE = (
    f"**not yet measured**: a side has no finished run record at the claim's budget. **too few seeds**: a side "
    f"has fewer than {MIN_RUNS_FOR_VERDICT} seeds (the threshold `neuropath report` uses), whatever the means say. "
    f"Otherwise each side's mean score gets a 95% bootstrap confidence interval over its seeds (rliable, as in "
    f"`neuropath report`), and the claim is **supported** when the method's interval lies wholly above the "
    f"comparison's, **not supported** when it lies wholly below, and **not distinguishable** when the two "
    f"overlap: a mean that is merely higher is not enough (with 3 seeds the interval is about the seeds' range, "
    f"so a verdict either way needs the seeds apart). A FLOP claim, with as many seeds, is supported when "
    f"the ratio of the two sides' mean training FLOPs reaches the factor claimed, and not supported otherwise.")


def verdict(x: np.ndarray, y: np.ndarray, x_ci: tuple[float, float] | None, y_ci: tuple[float, float] | None) -> str:
    """The verdict on "x above y" by `VERDICT_RULE`, from each side's per-seed scores and mean's 95% CI."""
    if len(x) == 0 or len(y) == 0:
        return "not yet measured"
    if min(len(x), len(y)) < MIN_RUNS_FOR_VERDICT or x_ci is None or y_ci is None:
        return "too few seeds"
    if x_ci[0] > y_ci[1]:
        return "supported"
    if x_ci[1] < y_ci[0]:
        return "not supported"
    return "not distinguishable"


def flops_verdict(x: list[float], y: list[float], factor: float) -> str:
    """The verdict on "x needs ``factor``× fewer FLOPs than y", from the runs that recorded a count."""
    if not x or not y:
        return "not yet measured"
    if min(len(x), len(y)) < MIN_RUNS_FOR_VERDICT:
        return "too few seeds"
    return "supported" if np.mean(y) / np.mean(x) >= factor else "not supported"


# ---- the records -----------------------------------------------------------------------------------------------

class Records:
    """The committed records under ``root``, each folder loaded once (`load_runs` reads every metrics.csv) and
    grouped the way `neuropath report` groups them, per budget and step window."""

    def __init__(self, root: Path, reps: int = 2000):
        self.root, self.reps = root, reps
        self._runs: dict[str, tuple[list[RunResult], list[RunResult], list[str]]] = {}
        self._groups: dict[tuple, dict] = {}
        self._ci: dict[tuple[float, ...], tuple[float, float]] = {}

    def folders(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.rglob("config.yaml")))

    def load_all(self, folder: str) -> tuple[list[RunResult], list[RunResult], list[str]]:
        """A folder's finished runs, unfinished runs with evaluations, and other names (`load_all_runs`); none
        for a folder that does not exist (yet)."""
        if folder not in self._runs:
            try:
                self._runs[folder] = load_all_runs(self.root / folder)
            except UsageError:
                self._runs[folder] = ([], [], [])
        return self._runs[folder]

    def load(self, folder: str) -> tuple[list[RunResult], list[str]]:
        """A folder's finished runs and unfinished names."""
        done, cut, others = self.load_all(folder)
        return done, [r.path.name for r in cut] + others

    def is_cut(self, folder: str) -> bool:
        """Whether ``folder`` holds cut records (run_records.py ``--cut``) rather than finished ones."""
        return folder.endswith(CUT) and any((self.root / folder).glob("*/cut.json"))

    def groups(self, folder: str, steps: int | None, window: tuple[int, int] | None = None) -> dict:
        """`group_runs` of the folder's runs at budget ``steps`` (None: all), scored in ``window`` if given.
        Copies: `split_variants` renames the runs it is given, and each budget is split on its own (runs of
        two budgets are no variants of each other)."""
        key = (folder, steps, window)
        if key not in self._groups:
            runs = self.load_all(folder)[0]
            if window is not None:     # unfinished runs, the folder's own and its cut records, count where they passed
                runs = runs + self.load_all(folder)[1] + self.load_all(folder + CUT)[1]
            runs = [dataclasses.replace(r) for r in runs if steps is None or r.budget == steps]
            if window is not None:
                runs = window_runs(runs, *window)
            self._groups[key] = group_runs(split_variants(runs))
        return self._groups[key]

    def side(self, side: Side, claim: Claim) -> list[RunResult]:
        if side.folder is None or claim.steps is None:
            return []
        return self.groups(side.folder, claim.steps, claim.window).get((claim.env, side.method, side.sparsity), [])

    def mean_ci(self, scores: np.ndarray) -> tuple[float, float] | None:
        """The 95% bootstrap CI of the mean of per-seed scores (`interval_estimates`, one environment), where
        there are enough seeds for a verdict; a CI of one or two runs has no spread to speak of."""
        if len(scores) < MIN_RUNS_FOR_VERDICT:
            return None
        key = tuple(float(s) for s in scores)
        if key not in self._ci:           # interval_estimates seeds its bootstrap: a rebuilt page keeps them
            self._ci[key] = interval_estimates({"m": np.asarray(scores, float)[:, None]}, self.reps)["m"]["mean_ci"]
        return self._ci[key]


def run_flops(run: RunResult) -> float | None:
    """The training FLOPs a record keeps (`flops.json`, counted from the run's checkpoint by run_records.py)."""
    path = run.path / "flops.json"
    try:
        return float(json.loads(path.read_text())["training_flops"]) if path.is_file() else None
    except (ValueError, KeyError):
        return None


# ---- formatting --------------------------------------------------------------------------------------------

def env_text(claim: Claim) -> str:
    """The environment with its version beside it: our MuJoCo runs are v5, the paper's v2/v4-era."""
    if claim.env.split("-")[0] in MUJOCO:
        paper = f"; the paper: {claim.paper_env}" if claim.paper_env != "–" else ""
        return f"{claim.env} (MuJoCo v5{paper})"
    if claim.paper_env not in ("–", claim.env):
        return f"{claim.env} (the paper: {claim.paper_env})"
    return claim.env


def side_text(name: str, scores: np.ndarray, ci: tuple[float, float] | None, decimals: int, unfinished: int = 0) -> str:
    """One side's number; ``unfinished``: how many of its runs are unfinished (counted in a step window only)."""
    if len(scores) == 0:
        return f"{name}: – (no records)"
    spread = f" ± {scores.std():.{decimals}f}" if len(scores) > 1 else ""
    interval = f" [95% CI {ci[0]:.{decimals}f}, {ci[1]:.{decimals}f}]" if ci else ""
    cut = f", {unfinished} unfinished" if unfinished else ""
    return f"{name}: {scores.mean():.{decimals}f}{spread}{interval} (n={len(scores)}{cut})"


def flops_text(name: str, flops: list[float]) -> str:
    return f"{name}: {np.mean(flops):.3g} FLOPs (n={len(flops)})" if flops else f"{name}: – (no FLOP count)"


def github_anchor(text: str) -> str:
    """GitHub's heading anchor: the rendered text lower-cased, everything but letters, digits, marks, ``_``,
    ``-`` and spaces dropped, spaces turned into ``-`` (links keep their text, code its content)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).lower()
    keep = [c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LMN"]
    return "".join(keep).replace(" ", "-")


def headings(markdown: str) -> list[tuple[str, str]]:
    """(heading text, anchor) of every heading outside code fences, repeated anchors numbered as GitHub does."""
    out, seen, fenced = [], defaultdict(int), False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if m:
            base = github_anchor(m.group(1))
            out.append((m.group(1), base if not seen[base] else f"{base}-{seen[base]}"))
            seen[base] += 1
    return out


def section_link(section: str, notebook: list[tuple[str, str]]) -> str:
    """A link to the first RESULTS.md heading that starts with ``section``, or the name alone if none does."""
    for text, anchor in notebook:
        if text.startswith(section):
            return f"[RESULTS.md: {section}](RESULTS.md#{anchor})"
    return f"RESULTS.md: {section} (section not found)"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ---- the claims table ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    claim: Claim
    verdict: str
    cells: list[str]


def claim_cell(claim: Claim) -> str:
    """The first cell of a claim's row: its text, and its note in italics."""
    return cell(claim.text + (f"<br>*{claim.note}*" if claim.note else ""))


def claim_row(claim: Claim, records: Records, notebook: list[tuple[str, str]]) -> Row:
    """One claim measured: both sides' runs from the records, our number, the verdict and the links."""
    x_runs, y_runs = records.side(claim.method, claim), records.side(claim.versus, claim)
    if claim.metric == "flops":
        xf = [f for f in map(run_flops, x_runs) if f is not None]
        yf = [f for f in map(run_flops, y_runs) if f is not None]
        word = flops_verdict(xf, yf, claim.factor)
        ratio = f"; ratio {np.mean(yf) / np.mean(xf):.1f}×" if xf and yf else ""
        result = f"{flops_text(claim.method.name, xf)}<br>{flops_text(claim.versus.name, yf)}{ratio}"
        n = (len(xf), len(yf))
    else:
        x = np.array([r.score for r in x_runs])
        y = np.array([r.score for r in y_runs])
        x_ci, y_ci = records.mean_ci(x), records.mean_ci(y)
        word = verdict(x, y, x_ci, y_ci)
        d = score_decimals(np.concatenate([x, y]))
        cut = [sum(not r.finished for r in runs) for runs in (x_runs, y_runs)]
        result = (f"{side_text(claim.method.name, x, x_ci, d, cut[0])}<br>"
                  f"vs {side_text(claim.versus.name, y, y_ci, d, cut[1])}")
        n = (len(x), len(y))
    if claim.steps is None:
        budget = claim.budget or "budget not known"
    else:
        budget = f"{steps_text(claim.steps)} steps" + (f" ({claim.budget})" if claim.budget else "")
    budget += f", {n[0]} vs {n[1]} seeds so far<br>{env_text(claim)}"
    detail = {"too few seeds": f" ({n[0]} vs {n[1]}; {MIN_RUNS_FOR_VERDICT} a side needed)",
              "not yet measured": " (" + ", ".join(s.name for s, k in zip((claim.method, claim.versus), n) if not k)
              + " missing)"}.get(word, "")
    folders = sorted({s.folder for s in (claim.method, claim.versus) if s.folder})
    where = [f"[records/{f}](records/{f}/)" if (records.root / f).is_dir() else f"records/{f} (none yet)"
             for f in folders] or ["no records kept"]
    command = claim.command or " ".join(f"[sweep of records/{f}](#{github_anchor(SWEEPS_OF + f)})" for f in folders)
    return Row(claim, word, [claim_cell(claim), cell(budget), cell(result), cell(claim.paper), f"**{word}**{detail}",
                             cell(command), cell(", ".join(where) + "; " + section_link(claim.section, notebook))])


CLAIM_HEADER = ["| claim | budget (steps, seeds, env) | our result: mean ± std over seeds | the paper | verdict | "
                "reproduce | records · notebook |", "|---|---|---|---|---|---|---|"]


def claims_table(rows: list[Row]) -> list[str]:
    return CLAIM_HEADER + [f"| {' | '.join(r.cells)} |" for r in rows]


# ---- every run, per records folder ----------------------------------------------------------------------------------

def keep_text(run: RunResult) -> str:
    s = run.settings
    keep = s.get("keep_ratio", 1.0) if s.get("pathway") != "dense" else 1.0
    a, c = s.get("actor_keep"), s.get("critic_keep")
    return f"a{a or keep:g}/c{c or keep:g}" if (a or c) and run.method != "dense" else f"{float(keep):g}"


def cut_table(records: Records, folder: str) -> list[str]:
    """The cut records of a folder: each run as far as it got, and when that was recorded."""
    lines = [f"Unfinished runs as far as they got (`run_records.py ... --cut benchmarks/records/{folder}`): not results; "
             "they count only in the step-window claims they have passed.", "",
             "| env | method | keep | seed | reached (of budget) | last evaluation | best | recorded |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(records.load_all(folder)[1], key=lambda r: (r.env, r.method, r.seed)):
        d = score_decimals(r.returns)
        try:
            when = json.loads((r.path / "cut.json").read_text()).get("recorded", "?")
        except (OSError, ValueError):
            when = "?"
        lines.append(f"| {r.env} | {cell(r.method)} | {keep_text(r)} | {r.seed} | {steps_text(int(r.steps[-1]))} "
                     f"({steps_text(r.budget)}) | {r.returns[-1]:.{d}f} | {r.returns.max():.{d}f} | {when} |")
    return lines


def runs_table(records: Records, folder: str) -> list[str]:
    """Every finished run of a records folder grouped as `neuropath report` groups them, and the unfinished."""
    if records.is_cut(folder):
        return cut_table(records, folder)
    groups = records.groups(folder, None)
    lines = ["| env | method | keep | seeds | steps | score (mean ± std) | per seed | training FLOPs (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for (env, method, _), runs in groups.items():
        s = np.array([r.score for r in runs])
        d = score_decimals(s)
        flops = [f for f in map(run_flops, runs) if f is not None]
        seeds = ", ".join(str(r.seed) for r in runs)
        spread = f" ± {s.std():.{d}f}" if len(s) > 1 else " (one seed)"
        flop_text = "–" if not flops else f"{np.mean(flops):.3g}" + (
            "" if len(flops) == len(runs) else f" ({len(flops)} of the runs)")
        lines.append(f"| {env} | {cell(method)} | {keep_text(runs[0])} | {len(runs)} ({seeds}) | "
                     f"{'/'.join(steps_text(b) for b in sorted({r.budget for r in runs}))} | "
                     f"{s.mean():.{d}f}{spread} | {', '.join(f'{v:.{d}f}' for v in s)} | {flop_text} |")
    unfinished = records.load(folder)[1]
    if unfinished:
        lines += ["", f"Not counted (unfinished or not read by `neuropath report`): {', '.join(unfinished)}"]
    return lines


# ---- how to reproduce: the sweep commands, read back from the configs --------------------------------------------

@dataclass
class SweepCommand:
    """A `neuropath sweep` grid that writes runs with the settings a records folder's configs hold."""
    folder: str
    envs: list[str]
    methods: list[str]
    keep: float
    seeds: list[int]
    steps: int
    sets: list[str]
    mismatch: list[str]          # runs whose settings the grid does not give back (should stay empty)

    def grid(self) -> Grid:
        return Grid(self.envs, self.methods, [self.keep], self.seeds, self.steps, self.sets)

    def text(self) -> str:
        sets = "".join(f" --set {shlex.quote(s)}" for s in self.sets)
        return (f"neuropath sweep {BENCH}/{self.folder} --envs {' '.join(self.envs)} --methods "
                f"{' '.join(self.methods)} --keep {self.keep:g} --seeds {' '.join(map(str, self.seeds))} "
                f"--steps {self.steps}{sets}")


def value_text(value) -> str:
    """A setting as `--set` takes it (true, null, [256,256]); 1.0 and 1 alike, as the config coerces both."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(value_text, value)) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def grid_settings(env: str, method: str, keep: float, seed: int, steps: int, sets: list[str] = ()) -> dict:
    """The settings `neuropath sweep` gives one run of a grid: what a config.yaml holds beyond these needed a --set."""
    spec = Grid([env], [method], [keep], [seed], steps, list(sets)).runs()[0]
    return run_settings(Config().set(spec.settings).validate().to_dict())


def _env_id(run: RunResult) -> str:
    return str(run.settings["env"])


def _scope_sets(key: str, runs: list[RunResult], implied: dict[Path, dict]) -> list[str] | None:
    """The narrowest `--set` items that give every run its value of ``key``: one for all runs, else one per
    environment, per pathway method (``dapd:`` covers dapd+grad and dapd@authors) or per grid method; None if
    the value varies inside a grid method (no --set scope can say that)."""
    scopes = (lambda r: "", _env_id, lambda r: split_method(r.method)[0], lambda r: r.method)
    for scope_of in scopes:
        parts: dict[str, list[RunResult]] = defaultdict(list)
        for r in runs:
            parts[scope_of(r)].append(r)
        out = []
        for scope, members in sorted(parts.items()):
            values = {value_text(r.settings.get(key)) for r in members}
            if len(values) > 1:
                break
            value = values.pop()
            if any(value_text(implied[r.path].get(key)) != value for r in members):
                out.append(f"{scope}:{key}={value}" if scope else f"{key}={value}")
        else:
            return out
    return None


def sweep_commands(folder: str, runs: list[RunResult]) -> list[SweepCommand]:
    """The sweeps that give back the folder's runs: methods grouped by the environments and seeds they ran,
    and every setting their configs hold beyond the grid as a `--set` at the narrowest scope that says it."""
    if not runs:
        return []
    seeds: dict[tuple[str, float], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for r in runs:
        keep = 1.0 if r.method == "dense" else float(r.settings["keep_ratio"])
        seeds[(r.method, keep)][_env_id(r)].add(r.seed)
    shapes: dict[tuple, list[tuple[str, float]]] = defaultdict(list)
    for (method, keep), per_env in seeds.items():
        for env_seeds in {tuple(sorted(s)) for s in per_env.values()}:
            envs = tuple(sorted(e for e, s in per_env.items() if tuple(sorted(s)) == env_seeds))
            shapes[(envs, env_seeds, None if method == "dense" else keep)].append((method, keep))
    for shape in [s for s in shapes if s[2] is None]:        # dense joins a sparse sweep of the same shape
        home = next((s for s in shapes if s[:2] == shape[:2] and s[2] is not None), None)
        if home:
            shapes[home] += shapes.pop(shape)
    steps = sorted({r.budget for r in runs})
    out = []
    for (envs, env_seeds, keep), members in sorted(shapes.items(), key=lambda kv: (-len(kv[0][1]), kv[0][0])):
        for budget in steps:
            names = {m for m, _ in members}
            group = [r for r in runs if r.method in names and _env_id(r) in envs and r.seed in env_seeds
                     and r.budget == budget]
            if group:
                out.append(_command(folder, group, sorted(envs), sorted(names, key=lambda m: (m != "dense", m)),
                                    keep or 1.0, list(env_seeds), budget))
    return out


def _command(folder: str, runs: list[RunResult], envs: list[str], methods: list[str], keep: float,
             seeds: list[int], steps: int) -> SweepCommand:
    implied = {r.path: grid_settings(_env_id(r), r.method, keep, r.seed, steps) for r in runs}
    keys = sorted({k for r in runs for k, v in r.settings.items()
                   if value_text(v) != value_text(implied[r.path].get(k))})
    sets, unsaid = [], []
    for key in keys:
        found = _scope_sets(key, runs, implied)
        if found is None:
            unsaid.append(key)
        else:
            sets += found
    command = SweepCommand(folder, envs, methods, keep, seeds, steps, sets, [])
    for r in runs:                          # read the grid back: does it give every run its settings?
        given = grid_settings(_env_id(r), r.method, keep, r.seed, steps, sets)
        differ = [k for k in r.settings if value_text(r.settings[k]) != value_text(given.get(k))]
        if differ:
            command.mismatch.append(f"{r.path.name}: {', '.join(differ)}")
    return command


def reproduce_lines(records: Records, claims: list[Claim]) -> list[str]:
    """Per records folder the sweeps read back from its configs, then how to keep and report their runs; then
    the commands of the claims that no records folder holds yet."""
    lines = ["## How to reproduce", "",
             f"Each records folder's sweeps as its runs' `config.yaml` files say they were run (the grid, and every "
             f"setting beyond it as a `--set`), into `{BENCH}` outside the repository; then keep the finished runs' "
             f"numbers as records and report them. A MuJoCo run needs the `mujoco` extra; a 1M-step SAC run takes "
             f"a few CPU-hours (RESULTS.md times each study).", ""]
    for folder in (f for f in records.folders() if not records.is_cut(f)):    # cut records: their folder's sweeps
        commands = sweep_commands(folder, records.load(folder)[0])
        lines += [f"### {SWEEPS_OF}{folder}", "", "```"]
        lines += [c.text() for c in commands]
        lines += [f"python benchmarks/run_records.py {BENCH}/{folder} benchmarks/records/{folder}",
                  f"neuropath report benchmarks/records/{folder}", "```", ""]
        lines += [f"Not given back by the grid: {m}" for c in commands for m in c.mismatch]
    missing = [c for c in claims if c.command and not any(
        s.folder and (records.root / s.folder).is_dir() and records.side(s, c) for s in (c.method, c.versus))]
    if missing:
        lines += ["### Claims without records yet", ""]
        lines += list(dict.fromkeys(f"- {c.text} ({c.env}): {c.command}" for c in missing))
    return lines


# ---- the page -----------------------------------------------------------------------------------------------

SCRIPT_GROUPS: dict[str, tuple[str, ...]] = {
    "Studies (long runs; their records feed this page)": ("paper1m.sh", "learning.py", "mt10.py", "offline_single.py",
                                                          "offline_mt10.py", "sb3_reference.py"),
    "Records and this page": ("run_records.py", "results_page.py", "score_table.py", "score_overlap.py",
                              "score_pathways.py"),
    "Speed, side by side in one run": ("throughput.py", "run_cost.py", "sparse_update.py", "adam_step.py",
                                       "inference.py", "ppo_throughput.py", "dqn_throughput.py", "atari_env.py",
                                       "offline_throughput.py", "multitask_batching.py", "entry_rule_cost.py",
                                       "score_cost.py"),
    "On a lent GPU machine": ("gpu_session.sh", "device_session.sh", "device_setup.sh", "cuda_checks.sh"),
}
"""every script of benchmarks/ by what it is for (files starting with ``_`` are shared helpers);
tests/test_results_page.py holds this list to the folder"""


def script_summary(path: Path) -> str:
    """A script's first sentence: its docstring's (Python) or its first comment's (shell)."""
    text = path.read_text()
    if path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text)) or ""
    else:
        comments = [line.lstrip("# ").rstrip() for line in text.splitlines()
                    if line.startswith("#") and not line.startswith("#!")]
        doc = " ".join(comments[:3])
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".") + "."


def scripts_lines() -> list[str]:
    lines = ["## The scripts", "",
             "Every benchmark has a smoke run at tiny settings in the test suite (tests/test_benchmarks.py); speed "
             "scripts print ratios measured side by side in one run.", ""]
    for group, names in SCRIPT_GROUPS.items():
        lines += [f"**{group}**", ""]
        lines += [f"- [`{n}`]({n}): {script_summary(HERE / n)}" for n in names]
        lines.append("")
    return lines


def build_page(records: Records, claims: list[Claim] | None = None, *, notebook: Path | None = None,
               today: datetime.date | None = None) -> tuple[str, list[Row]]:
    """The page's markdown and its claim rows, every number computed from ``records``."""
    claims = CLAIMS if claims is None else claims
    notebook = notebook or HERE / "RESULTS.md"
    anchors = headings(notebook.read_text()) if notebook.is_file() else []
    rows = [claim_row(c, records, anchors) for c in claims]
    paper, own = [r for r in rows if r.claim.paper_claim], [r for r in rows if not r.claim.paper_claim]
    counts = defaultdict(int)
    for r in rows:
        counts[r.verdict] += 1
    lines = [
        "# Results", "",
        f"What neuropath's runs say about each claim, the paper's first: the budget, our number, the paper's, a "
        f"verdict and how to reproduce it. **Generated** on {(today or datetime.date.today()).isoformat()} from "
        f"the committed run records in [records/](records/) (each run's `config.yaml` and `metrics.csv`) by "
        f"`{REGENERATE}`; do not edit it by hand, rerun that after adding records. No result is typed in: a claim "
        f"without records says so. The lab notebook behind every number is [RESULTS.md](RESULTS.md) (by issue and "
        f"date); the paper's numbers and their sources are in {PAPER_NOTES}.", "",
        f"Score = the mean return of a run's last {LAST_EVALS} evaluations (10 deterministic episodes each), as "
        f"`neuropath report` computes it; mean ± std over seeds. Our MuJoCo runs use Gymnasium's **v5** "
        f"environments; the paper's used v2 (mujoco-py era), so absolute returns are not strictly comparable. "
        f"Sparsity 95% = keep 5% of the actor's and of the critic's weights.", "",
        f"Verdicts: {VERDICT_RULE}", "",
        "Now: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])) + ".", "",
        "## The paper's claims", "", *claims_table(paper), "",
        "## Our own checks (reduced budgets and variants)", "", *claims_table(own), "",
        "## Every run, per records folder", "",
        "Grouped as `neuropath report` groups runs (environment, method, sparsity; runs of a group that differ in "
        "another setting are shown as variants).", ""]
    for folder in records.folders():
        lines += [f"### [records/{folder}](records/{folder}/)", "", *runs_table(records, folder), ""]
    lines += reproduce_lines(records, claims)
    lines += ["", *scripts_lines()]
    return "\n".join(lines).rstrip() + "\n", rows


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=Path, default=HERE / "records", help="the records folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE / "README.md", help="the page to write (default: %(default)s)")
    ap.add_argument("--notebook", type=Path, default=HERE / "RESULTS.md", help="the notebook the page links to")
    ap.add_argument("--reps", type=int, default=2000, help="bootstrap resamples per confidence interval")
    args = ap.parse_args(argv)
    text, rows = build_page(Records(args.records, args.reps), notebook=args.notebook)
    args.out.write_text(text)
    print(f"wrote {args.out}: {len(rows)} claims")
    return args.out


if __name__ == "__main__":
    main()
