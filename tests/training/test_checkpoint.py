"""Checkpoints: exact resume after a crash, keep-last-N-and-best, clear errors on bad files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from resnetlab.errors import CheckpointError
from resnetlab.training.callbacks import LambdaCallback, ProgressBar
from resnetlab.training.checkpoint import (
    BEST,
    LAST,
    load_checkpoint,
    model_from_checkpoint,
)
from resnetlab.training.config import TrainConfig
from resnetlab.training.trainer import Trainer


def cfg(run_dir, **changes) -> TrainConfig:
    base = dict(
        epochs=3,
        lr=0.1,
        log_every=2,
        val_size=0,
        channels_last=False,
        ema_decay=0.9,
        run_dir=str(run_dir) if run_dir is not None else None,
        keep_last=2,
    )
    base.update(changes)
    return TrainConfig(**base)


class Crash(Exception):
    pass


def crash_at(step):
    def cb(trainer, logs):
        if trainer.step == step:
            raise Crash(f"simulated crash at step {step}")

    return LambdaCallback(on_batch_end=cb)


def _assert_same_state(a: Trainer, b: Trainer) -> None:
    assert a.step == b.step and a.epoch == b.epoch
    assert a.lr == b.lr
    for (name, pa), pb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    for pa, pb in zip(a.ema.module.parameters(), b.ema.module.parameters(), strict=True):
        assert torch.equal(pa, pb)
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"])


def test_resume_after_a_crash_continues_exactly(micro_model, make_loader, tmp_path):
    # The uninterrupted reference run.
    ref = Trainer(micro_model(), make_loader(128, 32), config=cfg(tmp_path / "ref"))
    ref.fit()
    # The same run, crashing in the middle of epoch 2 (after the epoch-1 checkpoint).
    crashed = Trainer(
        micro_model(), make_loader(128, 32), config=cfg(tmp_path / "run"), callbacks=[crash_at(6)]
    )
    with pytest.raises(Crash):
        crashed.fit()
    assert crashed.status == "failed"
    ckpt = load_checkpoint(tmp_path / "run")  # the folder's last.pt
    assert (ckpt["epoch"], ckpt["step"], ckpt["batch_in_epoch"]) == (1, 4, 0)
    # A fresh process would rebuild everything from scratch and resume.
    resumed = Trainer(micro_model(seed=123), make_loader(128, 32), config=cfg(tmp_path / "run"))
    resumed.resume(tmp_path / "run")
    assert resumed.step == 4 and resumed.epoch == 1
    resumed.fit()
    _assert_same_state(ref, resumed)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in ref.history]
    # The logged losses after the resume point are those of the reference run.
    ref_steps, ref_loss = ref.stream.series("loss")
    res_steps, res_loss = resumed.stream.series("loss")
    tail = ref_steps > 4
    assert res_steps.tolist() == ref_steps[tail].tolist()
    assert res_loss.tolist() == ref_loss[tail].tolist()


def test_resume_from_a_mid_epoch_stop_continues_exactly(micro_model, make_loader, tmp_path):
    ref = Trainer(micro_model(), make_loader(128, 32), config=cfg(tmp_path / "ref", epochs=2))
    ref.fit()

    def stop(trainer, logs):
        if trainer.step == 6:
            trainer.stop_training = True

    first = Trainer(
        micro_model(),
        make_loader(128, 32),
        config=cfg(tmp_path / "run", epochs=2),
        callbacks=[LambdaCallback(on_batch_end=stop)],
    )
    first.fit()
    assert first.status == "stopped"
    resumed = Trainer(
        micro_model(seed=5), make_loader(128, 32), config=cfg(tmp_path / "run", epochs=2)
    )
    resumed.resume(tmp_path / "run" / LAST)
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (6, 1, 2)
    assert resumed.lr == pytest.approx(first.lr)
    resumed.fit()
    _assert_same_state(ref, resumed)


def test_keeps_the_last_n_and_the_best(micro_model, make_loader, tmp_path):
    val = make_loader(64, 64, train=False)
    t = Trainer(
        micro_model(), make_loader(64, 32), val, config=cfg(tmp_path, epochs=4, keep_last=2)
    )
    t.fit()
    files = sorted(p.name for p in tmp_path.glob("ckpt-step*.pt"))
    assert files == ["ckpt-step00000006.pt", "ckpt-step00000008.pt"]
    assert (tmp_path / LAST).exists() and (tmp_path / BEST).exists()
    best = load_checkpoint(tmp_path / BEST)
    accs = [h["val_accuracy"] for h in t.history]
    assert best["metrics"]["val_accuracy"] == max(accs)
    assert best["epoch"] == 1 + accs.index(max(accs))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))


def test_checkpoint_rebuilds_its_model_from_the_spec(micro_model, make_loader, tmp_path):
    t = Trainer(micro_model(), make_loader(64, 32), config=cfg(tmp_path, epochs=1))
    t.fit()
    model = model_from_checkpoint(tmp_path / LAST)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), t.eval_model.eval()(x), atol=1e-6)


def test_checkpoint_of_another_architecture_lists_mismatching_keys(
    micro_model, make_loader, tmp_path
):
    t = Trainer(micro_model(), make_loader(64, 32), config=cfg(tmp_path, epochs=1))
    t.fit()
    other = Trainer(
        micro_model(stack_channels=(8, 32)),
        make_loader(64, 32),
        config=cfg(tmp_path / "other", epochs=1),
    )
    with pytest.raises(CheckpointError) as err:
        other.resume(tmp_path / LAST)
    msg = str(err.value)
    assert "does not fit this model's architecture" in msg
    assert "shape (checkpoint vs model)" in msg and "stacks.1" in msg
    deeper = Trainer(
        micro_model(stack_units=(1, 2)),
        make_loader(64, 32),
        config=cfg(tmp_path / "deeper", epochs=1),
    )
    with pytest.raises(CheckpointError, match="missing in checkpoint: stacks.1.units.1"):
        deeper.resume(tmp_path / LAST)


def test_truncated_or_foreign_files_give_a_clear_error(micro_model, make_loader, tmp_path):
    t = Trainer(micro_model(), make_loader(64, 32), config=cfg(tmp_path, epochs=1))
    t.fit()
    data = (tmp_path / LAST).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, damaged or not a torch checkpoint"):
        load_checkpoint(cut)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pt: cannot read"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoints_refuse_pickled_code(tmp_path):
    """weights_only loading: a checkpoint that would run code on load is rejected."""
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"format": "resnetlab-checkpoint", "model": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_resume_after_a_crash_records_each_step_once(micro_model, make_loader, tmp_path):
    from resnetlab.inspect.gradients import GradientNormCallback
    from resnetlab.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    crashed = Trainer(
        micro_model(),
        make_loader(128, 32),
        config=cfg(None),
        store=store,
        callbacks=[crash_at(7), GradientNormCallback(every=2)],
    )
    with pytest.raises(Crash):
        crashed.fit()  # checkpoint at step 4 (end of epoch 1), rows logged up to step 6
    assert store.get_run(crashed.run_id).status == "failed"
    resumed = Trainer(
        micro_model(seed=1),
        make_loader(128, 32),
        config=cfg(None),
        store=store,
        run_id=crashed.run_id,
        callbacks=[GradientNormCallback(every=2)],
    )
    resumed.resume(store.get_run(crashed.run_id).checkpoint_last)
    resumed.fit()
    run = store.get_run(crashed.run_id)
    assert run.status == "completed"
    for key in store.metric_keys(run.id):
        steps = [r.step for r in store.metrics(run.id, keys=[key])]
        assert steps == sorted(set(steps)), (key, steps)  # strictly increasing, no replays
    assert store.series(run.id, "loss")[0] == [2, 4, 6, 8, 10, 12]
    assert store.series(run.id, "grad_norm/stem.conv")[0] == [0, 2, 4, 6, 8, 10]
    store.close()


def test_a_run_ended_by_sigterm_is_interrupted_not_failed(micro_model, make_loader, tmp_path):
    # job.kill() sends SIGTERM; the worker's handler turns it into SystemExit(143).
    from resnetlab.store import INTERRUPTED, RunStore

    def terminate(trainer, logs):
        if trainer.step == 2:
            raise SystemExit(143)

    with RunStore(tmp_path / "runs.db") as store:
        t = Trainer(
            micro_model(),
            make_loader(128, 32),
            config=cfg(None),
            store=store,
            callbacks=[LambdaCallback(on_batch_end=terminate)],
        )
        with pytest.raises(SystemExit):
            t.fit()
        assert t.status == INTERRUPTED
        assert store.get_run(t.run_id).status == INTERRUPTED


def test_resume_with_other_steps_per_epoch_continues_the_schedule(
    micro_model, make_loader, tmp_path
):
    """After a resume on another world size (here: another batch size, the same effect on
    the steps per epoch) the LR continues at the same fraction of training."""
    from resnetlab.training.schedules import one_cycle

    def stop(trainer, logs):
        trainer.stop_training = trainer.step == 6  # epoch 2, batch 2 of 4

    config = cfg(tmp_path / "run", epochs=3, schedule="onecycle", ema_decay=None)
    first = Trainer(
        micro_model(),
        make_loader(128, 32),
        config=config,
        callbacks=[LambdaCallback(on_batch_end=stop)],
    )
    first.fit()
    assert (first.epoch, first.batch_in_epoch, first.steps_per_epoch) == (1, 2, 4)
    # The LR the uninterrupted 4-steps-per-epoch run uses next: at 1.5 of 3 epochs.
    expected = 0.1 * one_cycle(12)(6)

    lrs = []
    bar_text = io.StringIO()
    resumed = Trainer(
        micro_model(),
        make_loader(128, 16),  # 8 steps per epoch
        config=cfg(tmp_path / "run", epochs=3, schedule="onecycle", ema_decay=None),
        callbacks=[
            LambdaCallback(on_batch_end=lambda t, logs: lrs.append(logs["lr"])),
            ProgressBar(file=bar_text, mininterval=0),
        ],
    )
    resumed.resume(tmp_path / "run")
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 4)  # half of epoch 2 still
    resumed.fit()
    assert lrs[0] == pytest.approx(expected, rel=1e-9)  # not the peak, not the end
    assert lrs[0] < 0.1 * 0.7
    assert len(lrs) == 4 + 8  # the rest of epoch 2, then epoch 3
    assert all(b < a for a, b in zip(lrs, lrs[1:], strict=False))  # still annealing
    assert lrs[-1] == pytest.approx(0.1 * one_cycle(24)(23))
    assert resumed.step == 6 + 12
    # The progress bar counts this run's steps: from 12 of 24 to 24 of 24.
    assert " 12/24 " in bar_text.getvalue() and " 24/24 " in bar_text.getvalue()


def test_two_run_stores_in_one_folder_keep_their_checkpoints_apart(
    micro_model, make_loader, tmp_path
):
    # Both stores number their first run 1: the second must not overwrite run-1/ of the
    # first, and a resume of either finds its own folder again.
    from resnetlab.store import RunStore

    config = cfg(None, epochs=1)
    dirs = {}
    for name in ("a", "b"):
        with RunStore(tmp_path / f"{name}.db") as store:
            trainer = Trainer(micro_model(), make_loader(64, 32), config=config, store=store)
            trainer.fit()
            run = store.get_run(trainer.run_id)
            assert run.id == 1 and run.checkpoint_last is not None
            dirs[name] = (trainer.run_dir, run.checkpoint_last)
    assert dirs["a"][0] != dirs["b"][0]
    assert config.run_dir is None  # the caller's config is not changed by a run
    for run_dir, last in dirs.values():
        saved = load_checkpoint(last)
        assert Path(last).parent == run_dir and saved["config"]["run_dir"] == str(run_dir)


def test_resuming_a_finished_run_shows_its_last_epoch_not_one_past_it(
    micro_model, make_loader, tmp_path
):
    Trainer(micro_model(), make_loader(64, 32), config=cfg(tmp_path / "run", epochs=1)).fit()
    bar_text = io.StringIO()
    again = Trainer(
        micro_model(),
        make_loader(64, 32),
        config=cfg(tmp_path / "run", epochs=1),
        callbacks=[ProgressBar(file=bar_text, mininterval=0)],
    )
    again.resume(tmp_path / "run")
    again.fit()  # nothing left to train
    shown = bar_text.getvalue()
    assert "epoch 1/1" in shown and "epoch 2/1" not in shown
