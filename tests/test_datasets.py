"""Offline datasets made from a real (tiny) run, written and read back in Minari's format."""

import csv
import json
import warnings
from importlib.metadata import version

import gymnasium
import minari
import numpy as np
import pytest

from neuropath.cli import main
from neuropath.data.datasets import MUJOCO_KINDS
from neuropath.experiments.make_datasets import make_mujoco_dataset, medium_snapshot

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
    made = meta["neuropath"]
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
    meta = data.storage.metadata["neuropath"]
    assert data.total_steps == 400 and data.observation_space.shape == (39,)
    assert meta["noise_sigma"] in NOISE_GRID and set(meta["calibration"]) == {str(s) for s in NOISE_GRID}
    chosen = meta["calibration"][str(meta["noise_sigma"])]
    assert all(abs(chosen - 0.5) <= abs(r - 0.5) for r in meta["calibration"].values())   # closest to 50%
    assert meta["expert_success"] > meta["random_success"]
    with pytest.raises(Exception, match="exists"):
        make_mt10_datasets("medium-expert", transitions=400, tasks=("drawer-close-v3",))


def test_mt10_episodes_replay_from_their_stored_seed_and_goal_variation_and_the_metadata_reads_as_minaris():
    from neuropath.data.metaworld_datasets import _TaskEnv, make_mt10_datasets
    data = minari.load_dataset(make_mt10_datasets("medium-expert", transitions=120, episode_steps=40,
                                                  tasks=("drawer-close-v3",))[0])
    meta = data.storage.metadata
    made = meta["neuropath"]
    assert made["actions"] == "env" and data.action_space == gymnasium.spaces.Box(-1, 1, (4,), np.float32)
    env = _TaskEnv("drawer-close-v3", made["seed"], 40)            # a fresh env: each episode on its own
    for e, m in zip(data.iterate_episodes(), data.storage.get_episode_metadata(data.episode_indices)):
        env.env.set_task(env.tasks[m["goal_variation"]])
        obs, ret = _replay(env.env, m["seed"], e.actions)
        np.testing.assert_array_equal(obs, e.observations)
        assert ret == pytest.approx(float(e.rewards.sum()))
    assert meta["requirements"] == [f"metaworld>={version('metaworld')}", f"mujoco>={version('mujoco')}"]
    assert meta["num_episodes_average_score"] == 10
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (made["ref_min_score"], made["ref_max_score"])
    assert meta["description"].startswith("Meta-World MT10 task drawer-close-v3, medium-expert: ")


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory):
    """A tiny InvertedPendulum run: its actions' bounds are [-3, 3], so actions stored in [-1, 1] show."""
    path = tmp_path_factory.mktemp("pendulum") / "run"
    flags = _flags({**TINY, "env": "InvertedPendulum-v5", "steps": 300, "eval_every": 100})
    assert main(["train", *flags, "--run-dir", str(path)]) == 0
    return path


def _replay(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, float]:
    """An episode's observations and return from its reset seed and its stored actions."""
    obs, _ = env.reset(seed=seed)
    observations, ret = [obs], 0.0
    for a in actions:
        obs, reward, *_ = env.step(a)
        observations.append(obs)
        ret += float(reward)
    return np.asarray(observations, np.float32), ret


@pytest.mark.parametrize("kind", MUJOCO_KINDS)
def test_every_kind_stores_env_actions_that_replay_from_each_episodes_seed_and_trains_on_unit_ones(pendulum, kind):
    from neuropath.training import checkpoint
    from neuropath.training.loops.offline import OfflineData
    did = make_mujoco_dataset(pendulum, kind, transitions=150)
    data = minari.load_dataset(did)
    env = data.recover_environment()
    assert data.action_space == env.action_space == gymnasium.spaces.Box(-3, 3, (1,), np.float32)
    assert data.storage.metadata["neuropath"]["actions"] == "env"
    episodes = list(data.iterate_episodes())
    seeds = [m.get("seed") for m in data.storage.get_episode_metadata(data.episode_indices)]
    actions = np.concatenate([e.actions for e in episodes])
    assert np.all(np.abs(actions) <= 3.0) and np.abs(actions).max() > 1.5          # the env's own bounds
    if kind.endswith("-replay"):      # no reset seeds: the run's own transitions, its actions times 3
        assert seeds == [None] * len(episodes)
        replay = np.load(checkpoint.latest(pendulum) / "replay.npy")
        rows = {tuple(np.round(np.r_[r[:4], 3 * r[4]], 4)) for r in replay}
        assert all(tuple(np.round(np.r_[o, a], 4)) in rows for e in episodes for o, a in zip(e.observations, e.actions))
    else:
        assert None not in seeds and len(set(seeds)) == len(seeds)
        for e, seed in zip(episodes, seeds):
            obs, ret = _replay(env, seed, e.actions)
            np.testing.assert_array_equal(obs, e.observations)
            assert ret == pytest.approx(float(e.rewards.sum()))
    env.close()
    offline = OfflineData(did, False)                 # the offline agents train in [-1, 1]
    np.testing.assert_allclose(offline.action.numpy(), actions / 3.0, atol=1e-6)
    assert offline.action.abs().max() <= 1.0 and offline.env_id == "InvertedPendulum-v5"


def test_mujoco_metadata_names_requirements_the_reference_episodes_and_describes_in_a_sentence(pendulum, tmp_path):
    did = make_mujoco_dataset(pendulum, "random", transitions=60)
    data = minari.load_dataset(did)
    meta = data.storage.metadata
    assert meta["requirements"] == [f"gymnasium[mujoco]>={version('gymnasium')}", f"mujoco>={version('mujoco')}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data.recover_environment().close()
    assert not [w for w in caught if "install" in str(w.message)]               # the requirements are met
    assert meta["num_episodes_average_score"] == 10                          # as many as the references used
    assert meta["description"].startswith("InvertedPendulum-v5 random: ") and "{" not in meta["description"]
    assert meta["neuropath"]["kind"] == "random" and meta["neuropath"]["ref_min_score"] == meta["ref_min_score"]
    assert main(["train", "--dataset", did, "--algo", "iql", "--steps", "5", "--hidden", "8", "--eval-episodes", "2",
                 "--no-progress", "--run-dir", str(tmp_path / "iql")]) == 0


def test_neuropath_datasets_made_before_actions_were_recorded_read_as_stored_and_others_as_env_actions():
    """Older neuropath datasets (no ``neuropath["actions"]``, provenance as JSON in ``description``) stored
    actions in [-1, 1]; a dataset made elsewhere stores the environment's own, which the reader rescales."""
    from minari.data_collector import EpisodeBuffer

    from neuropath.training.loops.offline import OfflineData
    env = gymnasium.make("InvertedPendulum-v5")
    actions = np.array([[0.6], [-0.9], [2.4]], np.float32)

    def write(did: str, author: str, space, description: str) -> None:
        buf = EpisodeBuffer(observations=np.zeros((4, 4), np.float32), actions=actions, rewards=np.ones(3),
                            terminations=np.array([False, False, True]), truncations=np.zeros(3, bool))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            minari.create_dataset_from_buffers(did, [buf], env="InvertedPendulum-v5", observation_space=env.observation_space,
                                               action_space=space, author=author, algorithm_name="test",
                                               description=description)
        (minari.storage.get_dataset_path(did) / "neuropath.json").write_text("{}")

    actions[2] = 0.8                                  # an old neuropath dataset: [-1, 1] actions
    write("neuropath/invertedpendulum/old-v0", "neuropath", gymnasium.spaces.Box(-1, 1, (1,), np.float32),
          json.dumps({"env": "InvertedPendulum-v5", "kind": "expert"}))
    old = OfflineData("neuropath/invertedpendulum/old-v0", False)
    assert old.env_id == "InvertedPendulum-v5" and old.made["kind"] == "expert"
    np.testing.assert_array_equal(old.action.numpy(), actions)
    actions[2] = 2.4
    write("elsewhere/invertedpendulum/expert-v0", "someone", env.action_space, "A dataset made elsewhere.")
    other = OfflineData("elsewhere/invertedpendulum/expert-v0", False)
    np.testing.assert_allclose(other.action.numpy(), actions / 3.0, atol=1e-7)
    env.close()


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
