from neuropath.pathways import Never, Periodic, WarmupFreeze


def test_dapd_updates_at_episode_ends_until_the_return_threshold():
    s = WarmupFreeze(freeze_return=100.0)
    assert s.due(10, episode_end=True) and not s.due(11)
    s.observe(5000, 99.0)
    assert not s.frozen
    s.observe(10000, 101.0)
    assert s.frozen and s.frozen_at == 10000 and "101.0" in s.freeze_reason
    assert not s.due(10001, episode_end=True)


def test_dapd_freeze_step_fires_without_the_threshold():
    s = WarmupFreeze(every=100, freeze_return=1e9, freeze_step=300)
    assert s.due(200) and not s.due(250)
    assert not s.due(300) and s.frozen and s.frozen_at == 300 and "step" in s.freeze_reason


def test_schedule_state_round_trips():
    s = WarmupFreeze(freeze_step=5)
    s.due(6)
    t = WarmupFreeze(freeze_step=5)
    t.load_state_dict(s.state_dict())
    assert t.frozen and t.frozen_at == 5 and t.freeze_reason == s.freeze_reason


def test_static_and_periodic():
    assert not Never().due(1, episode_end=True) and Never().frozen
    p = Periodic(every=10, start=20, end=50)
    assert [k for k in range(0, 70) if p.due(k)] == [20, 30, 40]
