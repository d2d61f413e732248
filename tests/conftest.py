import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Two cores on CI: keep each test single-threaded and deterministic.
    torch.set_num_threads(1)
    yield


TINY = {"env": "Hopper-v5", "hidden": [32, 32], "batch_size": 32, "seed_steps": 100, "init_steps": 100,
        "eval_every": 200, "eval_episodes": 2, "checkpoint_every": 200, "log_every": 100,
        "progress": False, "threads": 1, "score_batch": 32, "window": 200}
