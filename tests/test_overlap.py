"""`neuropath overlap`: the masks different scores choose on the same network and data."""

import csv

import pytest
import torch

from neuropath.cli import main
from neuropath.experiments.score_overlap import jaccard, random_jaccard

from .conftest import TINY
from .test_train import _flags


def test_jaccard_by_hand_and_the_random_baseline():
    a, b = torch.tensor([True, True, False, False]), torch.tensor([False, True, True, False])
    assert jaccard(a, b) == pytest.approx(1 / 3) and jaccard(a, a) == 1.0
    assert random_jaccard(0.05) == pytest.approx(0.05 / 1.95)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("overlap") / "dapd"
    assert main(["train", *_flags({**TINY, "steps": 400, "freeze_step": 10_000, "keep_checkpoints": 3}),
                 "--pathway", "dapd", "--run-dir", str(path)]) == 0
    return path


def test_every_score_pair_at_every_checkpoint_and_nothing_written(run, tmp_path, capsys):
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    out = tmp_path / "overlap.csv"
    assert main(["overlap", str(run), "--scores", "snip", "magnitude", "random", "--csv", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before          # the run is only read
    text = capsys.readouterr().out
    assert "## step 400, actor" in text and "## step 400, critic" in text and "snip vs run per layer" in text
    rows = list(csv.DictReader(out.open()))
    assert len({r["step"] for r in rows}) == 2                     # both kept checkpoints (one mid-run)
    moved = [r for r in rows if r["b"].endswith("@previous")]
    assert {r["a"] for r in moved} == {"snip", "magnitude", "random", "run"} and len({r["step"] for r in moved}) == 1
    assert all(float(r["jaccard"]) == 1.0 for r in moved if r["a"] == "random")  # --seed fixes the random draw
    rows = [r for r in rows if r not in moved]
    pairs = {(r["a"], r["b"]) for r in rows}
    assert pairs == {("snip", "magnitude"), ("snip", "random"), ("magnitude", "random"), ("snip", "run"),
                     ("magnitude", "run"), ("random", "run")}
    overall = [r for r in rows if r["layer"] == "all"]
    assert len(overall) == 2 * 2 * len(pairs)                                   # 2 checkpoints × 2 networks
    for r in overall:
        j = float(r["jaccard"])
        if "random" in (r["a"], r["b"]):                   # chance level: p / (2 − p) ≈ 0.026 at 5%
            assert j < 0.1
        else:
            assert 0.0 <= j <= 1.0
    # the run's installed mask at a checkpoint is DAPD's moving average of SNIP scores: closer to SNIP than chance
    assert all(float(r["jaccard"]) > 0.1 for r in overall if (r["a"], r["b"]) == ("snip", "run"))
    assert main(["overlap", str(run), "--scores", "snip", "--csv", str(out)]) == 2    # never overwrites


@pytest.mark.parametrize("args,needle", [(["--scores", "snap"], "unknown score 'snap'"),
                                         ([], "is not a neuropath run directory")])
def test_bad_overlap_input_ends_in_one_line(run, tmp_path, capsys, args, needle):
    target = str(run) if args else str(tmp_path)
    assert main(["overlap", target, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
