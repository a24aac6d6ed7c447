"""The training loop on real Fashion-MNIST subsets: learning, events, stopping, switches."""

from __future__ import annotations

import pytest
import torch

from resnetlab.errors import ConfigError
from resnetlab.training.callbacks import EVENTS, Callback, LambdaCallback
from resnetlab.training.config import TrainConfig
from resnetlab.training.optim import param_groups
from resnetlab.training.trainer import Trainer


def quick(**changes) -> TrainConfig:
    base = dict(epochs=1, lr=0.05, log_every=1, val_size=0, channels_last=False)
    base.update(changes)
    return TrainConfig(**base)


def test_a_few_steps_reduce_the_loss(micro_model, make_loader):
    loader = make_loader(384, 32, augment=False)
    trainer = Trainer(
        micro_model(),
        loader,
        config=quick(epochs=2, schedule="constant", lr=0.2, label_smoothing=0.0),
    )
    trainer.fit()
    _, losses = trainer.stream.series("loss")
    assert len(losses) == 2 * len(loader)
    first, last = losses[:4].mean(), losses[-4:].mean()
    assert last < 0.8 * first, (first, last)  # from ~2.3 (chance) clearly downwards
    assert trainer.history[-1]["accuracy"] > 0.25  # chance is 0.1


class Recorder(Callback):
    def __init__(self):
        self.calls: list[tuple[str, int, int]] = []

    def _rec(self, event, trainer, logs):
        self.calls.append((event, trainer.epoch, trainer.step))


for _event in EVENTS:
    setattr(Recorder, _event, lambda self, t, logs, _e=_event: self._rec(_e, t, logs))


def test_callbacks_fire_in_the_documented_order(micro_model, make_loader):
    rec = Recorder()
    loader = make_loader(128, 32)
    val = make_loader(64, 64, train=False)
    seen_logs = {}
    grab = LambdaCallback(on_epoch_end=lambda t, logs: seen_logs.update(logs))
    Trainer(micro_model(), loader, val, config=quick(epochs=2), callbacks=[rec, grab]).fit()
    events = [c[0] for c in rec.calls]
    per_epoch = (
        ["on_epoch_start"]
        + ["on_after_backward", "on_batch_end"] * len(loader)
        + ["on_validation_end", "on_epoch_end"]
    )
    assert events == ["on_fit_start", *per_epoch, *per_epoch, "on_fit_end", "on_end"]
    # Keras-style flat logs with val_ prefixes.
    for key in ("loss", "accuracy", "lr", "val_loss", "val_accuracy", "epoch", "step"):
        assert key in seen_logs


def test_on_end_runs_after_an_error_and_the_error_propagates(micro_model, make_loader):
    ended = []

    def boom(trainer, logs):
        if trainer.step == 2:
            raise RuntimeError("user callback failed")

    cbs = [LambdaCallback(on_batch_end=boom, on_end=lambda t, logs: ended.append(dict(logs)))]
    trainer = Trainer(micro_model(), make_loader(128, 32), config=quick(), callbacks=cbs)
    with pytest.raises(RuntimeError, match="user callback failed"):
        trainer.fit()
    assert ended and ended[0]["status"] == "failed"
    assert "user callback failed" in ended[0]["error"]


def test_stop_flag_stops_within_one_batch(micro_model, make_loader, tmp_path):
    steps_at_stop = []

    def stop_at_3(trainer, logs):
        if trainer.step == 3:
            trainer.stop_training = True
            steps_at_stop.append(trainer.step)

    fit_end = []
    cbs = [
        LambdaCallback(
            on_batch_end=stop_at_3, on_fit_end=lambda t, logs: fit_end.append(logs["status"])
        )
    ]
    trainer = Trainer(
        micro_model(),
        make_loader(256, 32),
        config=quick(epochs=3, run_dir=str(tmp_path)),
        callbacks=cbs,
    )
    trainer.fit()
    assert trainer.step == 3 and steps_at_stop == [3]
    assert trainer.status == "stopped" and fit_end == ["stopped"]
    # On stop the trainer writes a checkpoint at the step where it stopped.
    assert (tmp_path / "ckpt-step00000003.pt").exists() and (tmp_path / "last.pt").exists()


def test_same_seed_same_first_epoch_losses_on_cpu(micro_model, make_loader):
    def losses(seed):
        t = Trainer(micro_model(seed), make_loader(256, 32, seed=seed), config=quick(seed=seed))
        t.fit()
        return t.stream.series("loss")[1]

    a, b, c = losses(0), losses(0), losses(1)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_after_backward_sees_clipped_gradients_before_the_step(micro_model, make_loader):
    norms, weights_before = [], []
    model = micro_model()
    first = next(p for p in model.parameters() if p.ndim == 4)

    def look(trainer, logs):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms.append(
            torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads])
            ).item()
        )
        weights_before.append(first.detach().clone())

    trainer = Trainer(
        model,
        make_loader(64, 32),
        config=quick(grad_clip=0.01),
        callbacks=[LambdaCallback(on_after_backward=look)],
    )
    trainer.fit()
    assert len(norms) == 2 and max(norms) <= 0.01 + 1e-6
    assert not torch.equal(weights_before[-1], first.detach())  # the step came after


def test_no_weight_decay_on_batchnorm_and_bias(micro_model):
    model = micro_model()
    groups = {g["name"]: g for g in param_groups(model, 5e-4)}
    decayed = {id(p) for p in groups["decay"]["params"]}
    for name, p in model.named_parameters():
        is_norm_or_bias = p.ndim <= 1
        assert (id(p) in decayed) != is_norm_or_bias, name
    assert groups["no_decay"]["weight_decay"] == 0.0


def test_fp16_on_cpu_is_a_clear_config_error(micro_model, make_loader):
    with pytest.raises(ConfigError, match="fp16.*CUDA.*bf16"):
        Trainer(micro_model(), make_loader(64, 32), config=quick(precision="fp16", device="cpu"))


def test_bf16_autocast_and_channels_last_train_on_cpu(micro_model, make_loader):
    trainer = Trainer(
        micro_model(),
        make_loader(128, 32),
        config=quick(precision="bf16", channels_last=True, ema_decay=0.9),
    )
    trainer.fit()
    assert (
        trainer.model.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
        if hasattr(trainer.model, "stem") and hasattr(trainer.model.stem, "conv")
        else True
    )
    loss = trainer.history[-1]["loss"]
    assert 0 < loss < 5
    # The EMA copy moved away from the initial weights too.
    assert not torch.equal(next(trainer.ema.module.parameters()), next(micro_model().parameters()))


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="TrainConfig.schedule='linear'.*onecycle"):
        TrainConfig(schedule="linear")
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")


def test_diverging_loss_stops_with_advice(micro_model, make_loader):
    trainer = Trainer(
        micro_model(),
        make_loader(128, 32),
        config=quick(lr=1e12, schedule="constant", label_smoothing=0.0),
    )
    with pytest.raises(ConfigError, match="diverged.*lower the learning rate"):
        trainer.fit()
    assert trainer.status == "failed"
