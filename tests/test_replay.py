import numpy as np
import torch

from neuropath.data.replay import ReplayBuffer


def _filled(capacity, n, obs_dim=2):
    buf = ReplayBuffer(obs_dim, 1, capacity)
    for i in range(n):
        buf.add(np.full(obs_dim, i), np.array([0.5]), float(i), np.full(obs_dim, i + 1), i % 7 == 6)
    return buf


def test_fields_and_termination_flag():
    buf = _filled(10, 7)
    rows = buf._split(buf.storage[:7])
    assert rows.obs[3].tolist() == [3, 3] and rows.next_obs[3].tolist() == [4, 4]
    assert rows.reward[:, 0].tolist() == list(range(7))
    assert rows.not_done[:, 0].tolist() == [1, 1, 1, 1, 1, 1, 0]


def test_recent_window_reads_only_the_newest_transitions_across_the_wrap():
    buf = _filled(10, 23)                     # ring wrapped twice; newest rewards are 13..22
    torch.manual_seed(0)
    recent = buf.sample_recent(500, window=4)
    assert set(recent.reward[:, 0].tolist()) == {19.0, 20.0, 21.0, 22.0}
    assert set(buf.sample(500).reward[:, 0].tolist()) == set(map(float, range(13, 23)))


def test_save_load_round_trip_and_into_a_larger_buffer(tmp_path):
    buf = _filled(10, 23)
    buf.save(tmp_path / "r.npy")
    same = ReplayBuffer(2, 1, 10)
    same.load(tmp_path / "r.npy", buf.state_dict())
    assert torch.equal(same.storage, buf.storage) and same.ptr == buf.ptr
    bigger = ReplayBuffer(2, 1, 50)           # a run extended with more steps
    bigger.load(tmp_path / "r.npy", buf.state_dict())
    assert bigger.size == 10 and bigger.ptr == 10
    assert bigger.storage[:10, 3].tolist() == list(map(float, range(13, 23)))    # oldest first
    torch.manual_seed(0)
    assert set(bigger.sample_recent(200, 3).reward[:, 0].tolist()) == {20.0, 21.0, 22.0}
