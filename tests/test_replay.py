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
    for a, b in ((buf, same), (same, buf)):           # same minibatches, uniform and recent
        torch.manual_seed(1)
        x = (a.sample(64).reward, a.sample_recent(64, 5).reward, a.sample_nstep(64, 3, 0.9).reward)
        torch.manual_seed(1)
        y = (b.sample(64).reward, b.sample_recent(64, 5).reward, b.sample_nstep(64, 3, 0.9).reward)
        assert all(torch.equal(u, v) for u, v in zip(x, y))
    bigger = ReplayBuffer(2, 1, 50)           # a run extended with more steps
    bigger.load(tmp_path / "r.npy", buf.state_dict())
    assert bigger.size == 10 and bigger.ptr == 10
    assert bigger.storage[:10, 3].tolist() == list(map(float, range(13, 23)))    # oldest first
    torch.manual_seed(0)
    assert set(bigger.sample_recent(200, 3).reward[:, 0].tolist()) == {20.0, 21.0, 22.0}


def _episodes(lengths, capacity=100, terminal_last=(True,)):
    """Consecutive episodes; obs of step j of episode e is (100e + j); rewards are 1."""
    buf = ReplayBuffer(1, 1, capacity)
    for e, n in enumerate(lengths):
        for j in range(n):
            term = j == n - 1 and terminal_last[e % len(terminal_last)]
            buf.add(np.array([100 * e + j]), np.array([0.0]), 1.0, np.array([100 * e + j + 1]), term)
    return buf


def test_nstep_sums_rewards_and_stops_at_termination_and_time_limits():
    g = 0.5
    # episode 0: 5 steps, terminates; episode 1: 4 steps, truncated (time limit); episode 2: 3 steps
    buf = _episodes([5, 4, 3], terminal_last=(True, False, False))
    torch.manual_seed(0)
    b = buf.sample_nstep(2000, 3, g)
    start = b.obs[:, 0].long()
    for s0 in start.unique().tolist():
        i = (start == s0).nonzero()[0, 0]
        e, j = divmod(s0, 100)
        n_ep = [5, 4, 3][e]
        m = min(3, n_ep - j)                          # steps before the episode's end
        assert b.reward[i, 0].item() == sum(g ** k for k in range(m))
        assert b.discount[i, 0].item() == g ** m
        assert b.next_obs[i, 0].item() == s0 + m      # bootstrap state s_{t+m}
        terminal = e == 0 and j + m == n_ep
        assert b.not_done[i, 0].item() == (0.0 if terminal else 1.0)
        assert b.mid_weight[i].tolist() == [g ** k if k < m else 0.0 for k in (1, 2)]
    assert len(start.unique()) == 12                  # every transition can start a sample


def test_nstep_never_reads_past_the_newest_transition():
    buf = _episodes([6], terminal_last=(False,))      # an episode still running
    torch.manual_seed(0)
    b = buf.sample_nstep(500, 4, 0.9)
    newest = b.obs[:, 0] == 5
    assert newest.any() and (b.discount[newest, 0] == 0.9).all() and (b.next_obs[newest, 0] == 6).all()


def test_drop_oldest_forgets_exactly_the_oldest_and_survives_save_load(tmp_path):
    buf = ReplayBuffer(1, 1, 10, store_mean=True)
    for i in range(14):
        buf.add(np.array([i]), np.array([0.0]), float(i), np.array([i + 1]), False, np.array([i / 100]))
    assert buf.drop_oldest(3) == 3 and len(buf) == 7
    obs, mean = buf.oldest_rows(2)
    assert obs[:, 0].tolist() == [7.0, 8.0] and torch.allclose(mean[:, 0], torch.tensor([0.07, 0.08]))
    torch.manual_seed(0)
    assert set(buf.sample(300).reward[:, 0].tolist()) == set(map(float, range(7, 14)))
    buf.add(np.array([14]), np.array([0.0]), 14.0, np.array([15]), False)
    buf.save(tmp_path / "r.npy")
    again = ReplayBuffer(1, 1, 10, store_mean=True)
    again.load(tmp_path / "r.npy", buf.state_dict())
    torch.manual_seed(3)
    a = buf.sample(50).reward
    torch.manual_seed(3)
    assert torch.equal(a, again.sample(50).reward) and len(again) == 8
