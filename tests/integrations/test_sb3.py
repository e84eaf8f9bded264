"""SB3 adapter: the segmenter cuts episodes right; DQN trains a few thousand steps on the hippocampal buffer."""

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from lightning_memrl.integrations.sb3 import SB3ReplayBufferWrapper, TerminalSegmenter  # noqa: E402


def test_segmenter_cuts_at_episode_ends_and_keeps_truncation_apart():
    seg = TerminalSegmenter()
    obs = np.zeros(3, dtype=np.float32)
    assert seg.add(0, obs, np.array([1]), 1.0, obs + 1, terminated=False, done=False) is None
    assert seg.recent(0, 4).shape == (1, 5)
    episode = seg.add(0, obs + 1, np.array([0]), 0.5, obs + 2, terminated=False, done=True)  # time-limit cut
    assert len(episode) == 2 and not episode.dones.any() and episode.total_reward == 1.5
    assert torch.equal(episode.next_states[1], torch.full((3,), 2.0)) and seg.recent(0, 4) is None
    capped = TerminalSegmenter(max_length=2)
    capped.add(1, obs, np.array([0]), 0.0, obs, terminated=False, done=False)
    assert len(capped.add(1, obs, np.array([0]), 0.0, obs, terminated=False, done=False)) == 2


def test_dqn_trains_with_the_hippocampal_buffer():
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=500,
        train_freq=4,
        batch_size=32,
        buffer_size=5000,
        policy_kwargs={"net_arch": [32]},
        seed=0,
        device="cpu",
        replay_buffer_class=SB3ReplayBufferWrapper,
        replay_buffer_kwargs={
            "mixture_ratio": 0.25,
            "embed_dim": 16,
            "consolidate_every": 50,
            "consolidation_steps": 2,
        },
    )
    before = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(total_timesteps=3000)
    buffer = model.replay_buffer
    assert isinstance(buffer, SB3ReplayBufferWrapper) and len(buffer.hippocampal.store) > 20
    assert buffer.hippocampal.consolidator.steps > 0
    batch = buffer.sample(32)
    assert batch.observations.shape == (32, 4) and batch.actions.shape == (32, 1) and batch.dones.shape == (32, 1)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.q_net.parameters(), strict=True))
    assert model._n_updates > 500
