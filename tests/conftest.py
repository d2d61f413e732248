import contextlib

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


class HeldRun:
    """Another process that holds a run directory's lock, as a second training process would."""

    def __init__(self, run_dir):
        import subprocess
        import sys
        code = ("import sys, time; from neuropath.training import run_lock; "
                "run_lock.hold(sys.argv[1]); print('held', flush=True); time.sleep(600)")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


_NET_FLAGS = {"iql": ("--hidden", "--batch-size"), "bcq": ("--bcq-hidden", "--vae-hidden", "--bcq-batch-size")}


def for_offline_algo(argv: list[str]) -> list[str]:
    """``argv`` without the network flags of the offline algorithm it does not choose (the last ``--algo``, IQL
    by default): tests keep one list of tiny sizes for both, and a flag the algorithm does not read is refused."""
    algo = argv[len(argv) - 1 - argv[::-1].index("--algo") + 1] if "--algo" in argv else "iql"
    drop = [f for a, flags in _NET_FLAGS.items() if a != algo for f in flags]
    out, skipping = [], False
    for arg in argv:
        if arg.startswith("--"):
            skipping = arg in drop
        if not skipping:
            out.append(arg)
    return out


@contextlib.contextmanager
def minari_datasets_in(folder):
    """``MINARI_DATASETS_PATH`` set to ``folder`` while a module's datasets are made and read (the
    ``monkeypatch`` fixture is per test; a module-scoped dataset fixture needs its own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(folder))
        yield folder


def make_hopper_replay_dataset(run_dir, train_flags: list[str], transitions: int) -> str:
    """A tiny Hopper SAC run at ``run_dir`` and its ``expert-replay`` dataset (inside `minari_datasets_in`):
    the dataset's id."""
    from neuropath.cli import main
    assert main(["train", *train_flags, "--run-dir", str(run_dir)]) == 0
    assert main(["dataset", "make", str(run_dir), "expert-replay", "--transitions", str(transitions)]) == 0
    return "neuropath/hopper/expert-replay-v0"
