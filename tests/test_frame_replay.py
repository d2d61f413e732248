"""The frame-once Atari replay rebuilds exactly the stacked observations the real environment produced."""

import numpy as np
import torch

from neuropath.data.frame_replay import FrameReplay
from neuropath.envs.pixels import make_image_env


def test_stacks_rebuilt_from_single_frames_equal_the_envs_across_episode_starts():
    env = make_image_env("ALE/Breakout-v5")
    replay = FrameReplay(env.observation_space.shape, capacity=1000)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    first, seen = True, []
    for t in range(260):
        nxt, reward, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        replay.add(obs, 0, float(reward), nxt, bool(term), first=first)
        seen.append((obs, nxt))
        first = False
        obs = nxt
        if t in (90, 170) or term or trunc:      # forced episode starts: the stack pads with the reset frame
            obs, _ = env.reset()
            first = True
    assert len(replay) == 260 and replay.frames_total == 260 + 3
    s = replay.pos[:260]
    assert all(np.array_equal(a, o) for a, (o, _) in zip(replay.stacked(s), seen))
    assert all(np.array_equal(a, n) for a, (_, n) in zip(replay.stacked(s + 1), seen))
    assert replay.nbytes < 1.2 * 1000 * 84 * 84 + 1000 * 40          # each frame once, not 8 per transition


def test_a_wrapped_ring_never_serves_a_transition_whose_frames_were_overwritten():
    replay = FrameReplay((4, 2, 2), capacity=20)
    step = 0
    for episode in range(30):                        # many short episodes: frames wrap faster than transitions
        obs = np.full((4, 2, 2), step % 256, np.uint8)
        for t in range(3):
            step += 1
            nxt = np.concatenate([obs[1:], np.full((1, 2, 2), step % 256, np.uint8)])
            replay.add(obs, t, 1.0, nxt, t == 2, first=t == 0)
            obs = nxt
    torch.manual_seed(0)
    b = replay.sample(500)
    newest = b.next_obs[:, -1, 0, 0].numpy().astype(int)
    oldest_frame = b.obs[:, 0, 0, 0].numpy().astype(int)
    assert (newest - oldest_frame <= 3).all()                        # a stack spans one episode's frames
    assert np.array_equal(b.obs[:, 1:].numpy(), b.next_obs[:, :-1].numpy())      # next = obs shifted by a frame
    # every served stack equals the one stored: obs frames increase by one within an episode or repeat the reset
    diffs = np.diff(b.obs[:, :, 0, 0].numpy().astype(int), axis=1)
    assert set(np.unique(diffs)) <= {0, 1}
