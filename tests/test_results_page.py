"""The results page (benchmarks/results_page.py): built from the committed records it has a row per claim and
says "not yet measured" where records are missing; on fake records its numbers are the records' own and its
verdicts follow the stated rule. Fast: it only reads CSVs and configs (no training)."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from neuropath.experiments.report import load_runs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RECORDS = BENCHMARKS / "records"
REPS = 50          # bootstrap resamples: enough for the page's layout, and fast


def _load_page_module():
    """The script is not a package module: load it from its file, once."""
    spec = importlib.util.spec_from_file_location("results_page", BENCHMARKS / "results_page.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["results_page"] = module
    spec.loader.exec_module(module)
    return module


rp = _load_page_module()


@pytest.fixture(scope="module")
def real():
    """The committed records, loaded once for every test of this file."""
    return rp.Records(RECORDS, REPS)


@pytest.fixture(scope="module")
def page(real):
    return rp.build_page(real, today=datetime.date(2026, 1, 2))


def _row(text: str, *needles: str, first: str = "") -> str:
    """The one table row holding every needle (and starting with the cell ``first``, if given)."""
    rows = [line for line in text.splitlines() if line.startswith(f"| {first}" + (" |" if first else ""))
            and all(n in line for n in needles)]
    assert len(rows) == 1, (needles, rows)
    return rows[0]


def test_page_from_the_committed_records_has_every_claim(page):
    text, rows = page
    assert len(rows) == len(rp.CLAIMS) and len({c.key for c in rp.CLAIMS}) == len(rp.CLAIMS)
    assert "Generated** on 2026-01-02" in text and rp.REGENERATE in text
    assert text.index("## The paper's claims") < text.index("## Our own checks") < text.index("## How to reproduce")
    for row in rows:                                   # each claim once, in its table, with a verdict
        line = _row(text, rp.cell(rp.env_text(row.claim)), rp.cell(row.claim.paper), first=row.cells[0])
        assert f"**{row.verdict}**" in line
        assert "section not found" not in line, row.claim.section     # every notebook link resolves
    claim_lines = [line for line in text.split("## Every run")[0].splitlines() if line.startswith("| ")
                   and not line.startswith(("| claim", "|---"))]
    assert len(claim_lines) == len(rp.CLAIMS)


def test_claims_without_records_say_not_yet_measured(page):
    text, rows = page
    verdicts = {r.claim.key: r.verdict for r in rows}
    assert verdicts["1m-dense-walker2d"] == "not yet measured"            # no Walker2d run at all
    assert verdicts["mt10-online"] == "not yet measured"                  # no multi-task records are kept
    assert "MuJoCo v5; the paper: Walker2d-v2" in _row(text, "Walker2d-v5 (MuJoCo")
    by_verdict = {r.verdict for r in rows}
    assert by_verdict <= {"supported", "not supported", "not distinguishable", "too few seeds", "not yet measured"}


def test_our_numbers_are_the_reports(page, real):
    """A claim's numbers are `neuropath report`'s scores of the same records (mean of the last 10 evaluations)."""
    text, rows = page
    row = next(r for r in rows if r.claim.key == "100k-static-halfcheetah")
    runs, _ = load_runs(RECORDS / "scores")
    dapd = [r.score for r in runs if r.env == "HalfCheetah-v5" and r.method == "dapd" and r.budget == 100_000]
    assert len(dapd) >= 3
    assert f"dapd: {np.mean(dapd):.0f} ± {np.std(dapd):.0f}" in row.cells[2]


def test_the_sweeps_read_back_from_the_configs_give_the_runs_again(real):
    """Every records folder's derived `neuropath sweep` grid gives each of its runs the settings it ran with."""
    for folder in (f for f in real.folders() if not real.is_cut(f)):   # cut records: their folder's sweeps
        runs = real.load(folder)[0]
        commands = rp.sweep_commands(folder, runs)
        assert commands and not [m for c in commands for m in c.mismatch], folder
        names = {spec.name for c in commands for spec in c.grid().runs()}
        assert names == {r.path.name for r in runs}, folder
    scores = " ".join(c.text() for c in rp.sweep_commands("scores", real.load("scores")[0]))
    assert "--set Hopper-v5:freeze_return=1500" in scores and "--set dapd:freeze_step=60000" in scores


def _fake_record(src: Path, dest_root: Path, *, seed: int, returns: list[float], steps: int | None = None) -> Path:
    """A copy of a real record with its seed (and budget) changed and a short metrics.csv of known returns,
    evaluations spaced evenly up to the budget, so that its config is parsed as the real one is."""
    cfg = yaml.safe_load((src / "config.yaml").read_text())
    cfg["run"]["seed"] = seed
    cfg["run"]["steps"] = budget = steps or cfg["run"]["steps"]
    method = src.name.split("__")[1]
    dest = dest_root / f"{cfg['run']['env']}__{method}__keep{cfg['pathway']['keep_ratio']:g}__s{seed}"
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    header = "step,return_mean,return_std,return_min,return_max,length_mean,phase,cpu_seconds,energy_j,energy_mode"
    lines = [header] + [f"{budget * (i + 1) // len(returns)},{r},0,{r},{r},1000,frozen,{i},,none"
                        for i, r in enumerate(returns)]
    (dest / "metrics.csv").write_text("\n".join(lines) + "\n")
    return dest


def test_fake_records_give_their_mean_and_one_seed_is_too_few(tmp_path):
    """Two fake 1M-step records (DAPD, dense; seed 7) in a folder named paper1m: the paper's HalfCheetah claim
    shows each one's mean of its last 10 evaluations (an early, wild evaluation left out) and, one seed a side,
    says "too few seeds"; main() writes the page."""
    root = tmp_path / "records"
    _fake_record(RECORDS / "paper1m" / "HalfCheetah-v5__dapd__keep0.05__s0", root / "paper1m", seed=7,
                 returns=[99_999.0] + [1000.0 + 100 * i for i in range(10)])               # last 10: mean 1450
    _fake_record(RECORDS / "scores" / "HalfCheetah-v5__dense__keep1__s0", root / "paper1m", seed=7,
                 returns=[-5_000.0] + [900.0] * 10, steps=1_000_000)                          # mean 900
    out = rp.main(["--records", str(root), "--out", str(tmp_path / "README.md"), "--reps", str(REPS)])
    text = out.read_text()
    row = _row(text, "HalfCheetah-v5 (MuJoCo v5", first="DAPD at 95% sparsity scores above SAC-Dense")
    assert "dapd: 1450 (n=1)" in row and "dense: 900 (n=1)" in row
    assert "**too few seeds** (1 vs 1; 3 a side needed)" in row and "1 vs 1 seeds so far" in row
    hopper = _row(text, "Hopper-v5 (MuJoCo", first="DAPD at 95% sparsity scores above SAC-Dense")
    assert "**not yet measured**" in hopper
    assert "| HalfCheetah-v5 | dense | 1 | 1 (7) | 1M | 900 (one seed) |" in text      # the per-folder table
    records = rp.Records(root, REPS)
    [command] = [c for c in rp.sweep_commands("paper1m", records.load("paper1m")[0]) if "dense" in c.methods]
    assert not command.mismatch and "--seeds 7 --steps 1000000" in command.text()


def test_a_cut_record_counts_in_the_window_it_passed_and_nowhere_else(tmp_path):
    """A dense 1M-step run cut at 600k (paper1m-cut, run_records.py --cut) beside three finished DAPD records: the
    250k–300k claim counts it, saying it is unfinished; the final-score claim does not; the page lists it with the
    step it reached, and gives no sweep of its own for it."""
    root = tmp_path / "records"
    for seed in (7, 8, 9):
        _fake_record(RECORDS / "paper1m" / "HalfCheetah-v5__dapd__keep0.05__s0", root / "paper1m", seed=seed,
                     returns=[500.0 + seed] * 20)              # evaluations every 50k: 250k and 300k are there
    cut = _fake_record(RECORDS / "scores" / "HalfCheetah-v5__dense__keep1__s0", root / "paper1m-cut", seed=7,
                       returns=[800.0] * 20, steps=1_000_000)
    lines = (cut / "metrics.csv").read_text().splitlines(keepends=True)
    (cut / "metrics.csv").write_text("".join(lines[:13]))     # header and 12 evaluations: up to 600k
    (cut / "cut.json").write_text('{"step": 600000, "budget": 1000000, "recorded": "2026-12-04 17:53 UTC"}\n')
    text, _ = rp.build_page(rp.Records(root, REPS), today=datetime.date(2026, 1, 2))
    window = _row(text, "HalfCheetah-v5 (MuJoCo", first="DAPD at 95% is ahead of SAC-Dense early in training (250k–300k steps)")
    assert "dapd: 508 ± 1 [95% CI" in window and "vs dense: 800 (n=1, 1 unfinished)" in window
    final = _row(text, "HalfCheetah-v5 (MuJoCo v5", first="DAPD at 95% sparsity scores above SAC-Dense")
    assert "vs dense: – (no records)" in final
    assert "| HalfCheetah-v5 | dense | 1 | 7 | 600k (1M) | 800 | 800 | 2026-12-04 17:53 UTC |" in text
    assert "### Sweeps of records/paper1m-cut" not in text and "### Sweeps of records/paper1m" in text


def test_the_verdict_rule(tmp_path):
    records = rp.Records(tmp_path, REPS)

    def judge(x: list[float], y: list[float]) -> str:
        x, y = np.array(x), np.array(y)
        return rp.verdict(x, y, records.mean_ci(x), records.mean_ci(y))

    assert judge([10, 11, 12], [1, 2, 3]) == "supported"
    assert judge([1, 2, 3], [10, 11, 12]) == "not supported"
    assert judge([1, 5, 9], [2, 6, 10]) == "not distinguishable"         # a higher mean alone is not enough
    assert judge([100], [1, 2, 3]) == "too few seeds"
    assert judge([10, 11, 12], [1, 2]) == "too few seeds"
    assert judge([], [1, 2, 3]) == "not yet measured"
    assert rp.Records(tmp_path, REPS).mean_ci(np.array([1.0, 5, 9])) == records.mean_ci(np.array([1.0, 5, 9]))
    assert rp.flops_verdict([1.0] * 3, [21.0] * 3, 20) == "supported"
    assert rp.flops_verdict([1.0] * 3, [19.0] * 3, 20) == "not supported"
    assert rp.flops_verdict([1.0], [21.0], 20) == "too few seeds"
    assert rp.flops_verdict([], [21.0] * 3, 20) == "not yet measured"


def test_notebook_anchors_follow_github():
    heading = "The paper's MuJoCo claims at 1M steps, and DAPD as the authors ran it (issue #33; in progress)"
    assert rp.github_anchor(heading) == \
        "the-papers-mujoco-claims-at-1m-steps-and-dapd-as-the-authors-ran-it-issue-33-in-progress"
    assert rp.github_anchor("PPO on MuJoCo, 1M steps: dense vs DAPD at keep 0.05 / 0.1 / 0.2, 64×64, 3 seeds") == \
        "ppo-on-mujoco-1m-steps-dense-vs-dapd-at-keep-005--01--02-6464-3-seeds"
    doc = "# A\n\n## A ##\n```\n# not a heading\n```\n### `records/x`\n## C#\n"
    assert rp.headings(doc) == [("A", "a"), ("A", "a-1"), ("`records/x`", "recordsx"), ("C#", "c")]


def test_the_committed_page_has_every_claim():
    """benchmarks/README.md is the generated page: a claim added to the script needs the page rebuilt."""
    text = (BENCHMARKS / "README.md").read_text()
    assert rp.REGENERATE in text
    for claim in rp.CLAIMS:
        _row(text, rp.cell(rp.env_text(claim)), rp.cell(claim.paper), first=rp.claim_cell(claim))



def test_the_page_lists_every_benchmark_script_once_in_its_group_with_its_first_sentence(page):
    listed = [n for names in rp.SCRIPT_GROUPS.values() for n in names]
    present = sorted(p.name for p in BENCHMARKS.iterdir()
                     if p.suffix in (".py", ".sh") and not p.name.startswith("_"))
    assert sorted(listed) == present and len(set(listed)) == len(listed)   # a new script must be given a group
    text, _ = page
    scripts = text[text.index("## The scripts"):]
    for name in listed:
        summary = rp.script_summary(BENCHMARKS / name)
        assert f"- [`{name}`]({name}): {summary}" in scripts and len(summary) > 20, name
