"""The real Meta-World MT10 vector env: ten tasks, one-hot ids, success flags, SAME_STEP resets."""

import numpy as np
import pytest

from neuropath.envs.metaworld import MT10_TASKS, check_benchmark, make_benchmark
from neuropath.errors import UsageError


def test_mt10_steps_every_task_in_one_vector_env():
    envs = make_benchmark("MT10", seed=0, episode_steps=20)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (10, 49) and envs.action_space.shape == (10, 4)
        assert np.array_equal(obs[:, 39:], np.eye(10))                  # row i carries task i's one-hot
        assert len(envs.get_attr("task_name")) == 10
        rng = np.random.default_rng(0)
        ended = 0
        for _ in range(25):                                             # crosses the 20-step limit
            obs, reward, term, trunc, info = envs.step(rng.uniform(-1, 1, (10, 4)).astype(np.float32))
            # at a time limit the step's own info moves to final_info (SAME_STEP autoreset)
            step_info = info["final_info"] if trunc.any() else info
            assert reward.shape == (10,) and set(np.unique(step_info["success"])) <= {0.0, 1.0}
            if trunc.any():
                ended += 1
                assert np.array_equal(trunc, np.ones(10, bool)) and np.stack(info["final_obs"]).shape == (10, 49)
        assert ended == 1 and len(MT10_TASKS) == 10
    finally:
        envs.close()


@pytest.mark.parametrize("name,steps,needle", [("MT11", 150, "unknown benchmark 'MT11'; did you mean MT10?"),
                                               ("MT10", 600, "--episode-steps must be in [1, 500]")])
def test_bad_benchmark_settings_fail_in_one_line(name, steps, needle):
    with pytest.raises(UsageError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")):
        check_benchmark(name, steps)
