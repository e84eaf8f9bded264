"""RecurrentPPO wiring: precision, divergence detection, logged metrics, input checks."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.agents.epoch_means import EpochMeans
from lightning_memrl.controllers import GRU, LSTM, Transformer
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError, TrainingDivergedError
from lightning_memrl.memory import KVMemory

from ._batches import sequence_batch


def _tiny(controller=None, **model_kwargs):
    dm = RolloutDataModule(
        env_kwargs={"horizon": 5}, num_envs=8, rollout_steps=16, seq_len=8, burn_in=2, num_minibatches=2,
        update_epochs=2, eval_envs=8, eval_episodes=8,
    )  # fmt: skip
    return dm, RecurrentPPO(controller or GRU(16), env_spec=dm.env_spec, **model_kwargs)


def _trainer(**kwargs):
    defaults = dict(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    return L.Trainer(**{**defaults, **kwargs})


@pytest.mark.parametrize("controller", [GRU(16), LSTM(16)])
def test_bf16_mixed_precision_trains(controller):
    dm, agent = _tiny(controller)
    trainer = _trainer(precision="bf16-mixed", check_val_every_n_epoch=2)
    trainer.fit(agent, dm)
    assert torch.isfinite(trainer.callback_metrics["train/policy_loss"])
    assert "val/success_rate" in trainer.callback_metrics


def test_logs_the_promised_metrics():
    dm, agent = _tiny()
    trainer = _trainer(check_val_every_n_epoch=1)
    trainer.fit(agent, dm)
    expected = {
        "train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clip_fraction",
        "train/grad_norm", "rollout/explained_variance", "rollout/episode_return", "rollout/success_rate",
        "time/sps", "time/env_steps", "val/success_rate", "val/return",
    }  # fmt: skip
    assert expected <= set(trainer.callback_metrics)
    assert float(trainer.callback_metrics["time/env_steps"]) == 2 * 8 * 16


class _RecordMinibatches(L.Callback):
    """The policy loss and size of every minibatch of the last iteration, as training_step returned them."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.losses, self.sizes = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["policy_loss"]))
        self.sizes.append(batch.log_probs.numel())


def test_training_diagnostics_are_the_iterations_minibatch_means():
    """The train/ metrics logged once per iteration (EpochMeans) are the size-weighted means of that
    iteration's minibatches, as Lightning's per-step `on_epoch` logging computed them."""
    dm, agent = _tiny()
    record = _RecordMinibatches()
    trainer = _trainer(callbacks=[record], limit_val_batches=0)
    trainer.fit(agent, dm)
    assert len(record.losses) == 2 * 2  # num_minibatches x update_epochs of the last iteration
    expected = sum(x * n for x, n in zip(record.losses, record.sizes, strict=True)) / sum(record.sizes)
    assert float(trainer.callback_metrics["train/policy_loss"]) == pytest.approx(expected, rel=1e-5)


def test_epoch_means_weigh_each_key_by_the_steps_that_reported_it():
    means = EpochMeans()
    means.add({"a": torch.tensor(1.0), "b": 4.0}, 1.0)
    means.add({"a": torch.tensor(4.0)}, 3.0)
    out = means.pop()
    assert float(out["a"]) == pytest.approx((1.0 + 12.0) / 4.0) and float(out["b"]) == 4.0
    assert means.pop() == {}


def test_evaluation_metrics_are_means_over_episodes_not_over_evaluations():
    """Two evaluations of 1 and 3 episodes: the logged means weigh each episode once (torchmetrics' MeanMetric,
    the same sums pooled over DDP ranks), not each evaluation once."""
    _, agent = _tiny()
    evaluations = [
        {"success_rate": torch.tensor(1.0), "return_mean": torch.tensor(2.0), "length_mean": torch.tensor(4.0),
         "episodes": torch.tensor(1.0)},
        {"success_rate": torch.tensor(0.0), "return_mean": torch.tensor(6.0), "length_mean": torch.tensor(8.0),
         "episodes": torch.tensor(3.0)},
    ]  # fmt: skip
    (logged,) = _trainer().validate(agent, dataloaders=DataLoader(evaluations, batch_size=None), verbose=False)
    assert logged["val/success_rate"] == pytest.approx(0.25)
    assert logged["val/return"] == pytest.approx(5.0) and logged["val/episode_length"] == pytest.approx(7.0)


def test_nan_loss_stops_with_the_iteration_and_causes():
    dm, agent = _tiny()
    with torch.no_grad():
        agent.critic.bias.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"iteration 0.*learning rate"):
        _trainer(limit_val_batches=0).fit(agent, dm)


def test_missing_env_spec_and_bad_hyperparameters_are_config_errors():
    with pytest.raises(ConfigError, match="env_spec"):
        RecurrentPPO(GRU(8))
    dm, _ = _tiny()
    with pytest.raises(ConfigError, match="lr"):
        RecurrentPPO(GRU(8), env_spec=dm.env_spec, lr=0.0)


def test_greedy_acting_is_deterministic_and_sampling_follows_the_generator():
    dm, agent = _tiny()
    obs = torch.randn(6, dm.env_spec.observation_size)
    state = agent.initial_state(6)
    reset = torch.ones(6, dtype=torch.bool)
    greedy = [agent.act(obs, state, reset, greedy=True).action for _ in range(2)]
    assert torch.equal(*greedy)
    sampled = [agent.act(obs, state, reset, generator=torch.Generator().manual_seed(1)).action for _ in range(2)]
    assert torch.equal(*sampled)


def test_the_optimizer_is_the_fused_adam_over_every_parameter():
    """The fused Adam (one kernel for all tensors) is the fast path on CPU and CUDA; every parameter is in it,
    frozen ones included, so that a checkpoint's optimizer state maps onto the same list when resumed."""
    _, agent = _tiny()
    next(agent.parameters()).requires_grad_(False)
    optimizer = agent.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(agent.parameters()))


def test_acting_in_place_writes_the_controllers_and_the_memorys_state_where_it_is():
    """The collector's step (inside `acting_in_place`) writes the Transformer's KV ring and the memory's buffer
    into the state it is given; outside, `act` leaves that state as it was."""
    dm = RolloutDataModule(env_kwargs={"horizon": 5}, num_envs=4, rollout_steps=8, seq_len=4)
    controller = Transformer(hidden_size=16, num_heads=2, context=4)
    memory = KVMemory(query_size=16, capacity=4, num_heads=2, head_dim=4)
    agent = RecurrentPPO(controller, env_spec=dm.env_spec, memory=memory)
    obs, reset = torch.randn(4, dm.env_spec.observation_size), torch.zeros(4, dtype=torch.bool)
    state = agent.initial_state(4)
    with torch.no_grad():
        copied = agent.act(obs, state, reset).state
        with agent.acting_in_place():
            written = agent.act(obs, state, reset).state
    caches = lambda s: [s["controller"][0]["key"], s["controller"][1]["value"], s["memory"]["keys"]]
    assert all(a is not b for a, b in zip(caches(copied), caches(state), strict=True))
    assert all(a is b for a, b in zip(caches(written), caches(state), strict=True))


def test_the_update_builds_no_final_state_of_the_controller_or_the_memory():
    """`evaluate_sequences` keeps only the features: the Transformer's rings and the memory's buffers after the
    sequence are not built (their `discard_final_state()` is entered), and burn-in still advances the state."""
    dm = RolloutDataModule(env_kwargs={"horizon": 5}, num_envs=4, rollout_steps=8, seq_len=4)
    controller = Transformer(hidden_size=16, num_heads=2, context=4)
    memory = KVMemory(query_size=16, capacity=4, num_heads=2, head_dim=4)
    agent = RecurrentPPO(controller, env_spec=dm.env_spec, memory=memory)
    returned = []
    for module in (controller, memory):

        def spy(*args, run=module.forward_sequence):
            out = run(*args)
            returned.append(out[1])
            return out

        module.forward_sequence = spy
    agent.evaluate_sequences(sequence_batch(agent, sequences=2, length=4, burn_in=2))
    burn_in, update = returned[:2], returned[2:]
    assert all(state is not None for state in burn_in)  # the burn-in's state is the update's start
    assert update[0] == (None, None) and update[1] is None  # the Transformer's two layers, the memory
