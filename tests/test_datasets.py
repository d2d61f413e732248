"""Offline datasets made from a real (tiny) run, written and read back in Minari's format."""

import csv
import json

import minari
import numpy as np
import pytest

from neuropath.cli import main
from neuropath.data.datasets import medium_snapshot

from .conftest import TINY
from .test_train import _flags


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "run"
    assert main(["train", *_flags({**TINY, "steps": 500, "eval_every": 100}), "--run-dir", str(path)]) == 0
    return path


@pytest.fixture(autouse=True)
def _datasets_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def test_runs_keep_a_policy_snapshot_at_every_evaluation_and_medium_is_a_third_of_final(run):
    snaps = sorted(p.name for p in (run / "snapshots").iterdir())
    assert snaps == [f"policy-{s:09d}.pt" for s in (100, 200, 300, 400, 500)]
    rows = {int(r["step"]): float(r["return_mean"]) for r in csv.DictReader(open(run / "metrics.csv"))}
    step, _, ret = medium_snapshot(run)
    assert ret == rows[step] and all(abs(rows[step] - rows[500] / 3) <= abs(v - rows[500] / 3) for v in rows.values())


@pytest.mark.parametrize("kind", ["expert", "expert-replay", "medium-expert"])
def test_datasets_round_trip_through_minari_with_their_reference_scores(run, kind, capsys):
    assert main(["dataset", "make", str(run), kind, "--transitions", "300"]) == 0
    data = minari.load_dataset(f"neuropath/hopper/{kind}-v0")
    episodes = list(data.iterate_episodes())
    assert sum(len(e.actions) for e in episodes) == data.total_steps == 300       # the cap, exactly
    for e in episodes:
        assert e.observations.shape == (len(e.actions) + 1, 11) and np.all(np.abs(e.actions) <= 1.0)
        assert e.terminations[-1] or e.truncations[-1]
    meta = data.storage.metadata
    made = json.loads(meta["description"])
    assert made["kind"] == kind and made["source_run"] == str(run) and made["transitions"] == 300
    assert meta["ref_min_score"] == pytest.approx(made["ref_min_score"]) and meta["ref_max_score"] == pytest.approx(made["ref_max_score"])
    if kind == "expert-replay":                 # the replay's own transitions, episode by episode
        from neuropath.training import checkpoint
        replay = np.load(checkpoint.latest(run) / "replay.npy")
        rows = {tuple(np.round(r[:11], 5)) for r in replay}
        assert all(tuple(np.round(o, 5)) in rows for e in episodes for o in e.observations[:-1])
    capsys.readouterr()
    assert main(["dataset", "list"]) == 0 and f"neuropath/hopper/{kind}-v0" in capsys.readouterr().out


def test_bad_dataset_requests_end_in_one_line(run, capsys):
    assert main(["dataset", "make", str(run), "expert", "--transitions", "50"]) == 0
    capsys.readouterr()
    for args, needle in ((["make", str(run), "expert", "--transitions", "50"], "exists"),
                         (["make", str(run), "bogus"], "unknown dataset kind"),
                         (["make", str(run), "expert", "--transitions", "0"], "--transitions must be >= 1"),
                         (["show", "nope/none-v0"], "no local dataset")):
        assert main(["dataset", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1


def test_mt10_datasets_from_the_scripted_policies_with_calibrated_noise():
    from neuropath.data.metaworld_datasets import NOISE_GRID, make_mt10_datasets
    ids = make_mt10_datasets("medium-expert", transitions=400, tasks=("drawer-close-v3",))
    assert ids == ["neuropath/mt10/drawer-close-medium-expert-v0"]
    data = minari.load_dataset(ids[0])
    meta = json.loads(data.storage.metadata["description"])
    assert data.total_steps == 400 and data.observation_space.shape == (39,)
    assert meta["noise_sigma"] in NOISE_GRID and set(meta["calibration"]) == {str(s) for s in NOISE_GRID}
    chosen = meta["calibration"][str(meta["noise_sigma"])]
    assert all(abs(chosen - 0.5) <= abs(r - 0.5) for r in meta["calibration"].values())   # closest to 50%
    assert meta["expert_success"] > meta["random_success"]
    with pytest.raises(Exception, match="exists"):
        make_mt10_datasets("medium-expert", transitions=400, tasks=("drawer-close-v3",))


def test_a_cut_or_corrupt_dataset_and_an_impossible_request_end_in_one_line(run, tmp_path, capsys):
    import shutil
    assert main(["dataset", "make", str(run), "expert", "--transitions", "60"]) == 0
    did = "neuropath/hopper/expert-v0"
    path = minari.storage.get_dataset_path(did)
    train = ["train", "--dataset", did, "--algo", "iql", "--steps", "5", "--hidden", "8", "--no-progress"]
    capsys.readouterr()
    checks = [(["--transitions", "61", "--run-dir", str(tmp_path / "a")], "is more than dataset"),
              (["--run-dir", str(tmp_path / "b")], "is incomplete (its writing was interrupted)"),
              (["--run-dir", str(tmp_path / "c")], "cannot be read")]
    for i, (extra, needle) in enumerate(checks):
        if i == 1:                                    # a `dataset make` killed before its last write
            (path / "neuropath.json").rename(tmp_path / "neuropath.json")
        if i == 2:                                    # a half-written HDF5 file
            (tmp_path / "neuropath.json").rename(path / "neuropath.json")
            data = path / "data" / "main_data.hdf5"
            data.write_bytes(data.read_bytes()[:2000])
        assert main([*train, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1
        assert not any((tmp_path / d).exists() for d in "abc")                # nothing written
    no_snaps = tmp_path / "nosnap"
    shutil.copytree(run, no_snaps, ignore=shutil.ignore_patterns("snapshots"))
    assert main(["dataset", "make", str(no_snaps), "medium", "--id", "neuropath/hopper/m-v0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no policy snapshots" in err and len(err.splitlines()) == 1
