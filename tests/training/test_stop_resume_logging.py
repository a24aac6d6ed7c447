"""A run stopped mid-epoch (Ctrl-C, job.stop, a callback) and resumed logs exactly what the
uninterrupted run logs: the same rows at the same steps with the same values, and the same
epoch means (issue 14.7). Weights were already identical; the log now is too."""

from __future__ import annotations

import pytest

from resnetlab.store import RunStore
from resnetlab.training.callbacks import LambdaCallback
from resnetlab.training.config import TrainConfig
from resnetlab.training.trainer import Trainer

KEYS = ("loss", "accuracy", "lr")


def config(run_dir) -> TrainConfig:
    # 6 steps per epoch (192 images / 32), a row every 4 steps: the stop at step 9 is
    # between logging points and in the middle of the second epoch.
    return TrainConfig(
        epochs=2,
        lr=0.1,
        log_every=4,
        val_size=0,
        channels_last=False,
        precision="fp32",
        run_dir=str(run_dir),
    )


def rows(store: RunStore, run_id: int) -> dict[str, list[tuple[int, float]]]:
    return {k: [(r.step, r.value) for r in store.metrics(run_id, keys=[k])] for k in KEYS}


def test_a_mid_epoch_stop_and_resume_logs_what_the_uninterrupted_run_logs(
    micro_model, make_loader, tmp_path
):
    with RunStore(tmp_path / "runs.db") as store:
        whole = Trainer(
            micro_model(), make_loader(192, 32), config=config(tmp_path / "a"), store=store
        )
        whole.fit()

        def stop_at_9(trainer, logs):
            if trainer.step == 9:
                trainer.stop_training = True

        stopped = Trainer(
            micro_model(),
            make_loader(192, 32),
            config=config(tmp_path / "b"),
            store=store,
            callbacks=[LambdaCallback(on_batch_end=stop_at_9)],
        )
        stopped.fit()
        assert stopped.status == "stopped" and stopped.batch_in_epoch == 3
        resumed = Trainer(
            micro_model(seed=1),
            make_loader(192, 32),
            config=config(tmp_path / "b"),
            store=store,
            run_id=stopped.run_id,
        )
        resumed.resume(store.get_run(stopped.run_id).checkpoint_last)
        resumed.fit()
        assert resumed.status == "completed"

        expected, got = rows(store, whole.run_id), rows(store, stopped.run_id)
        for key in KEYS:
            assert [s for s, _ in got[key]] == [s for s, _ in expected[key]], key
            assert [v for _, v in got[key]] == pytest.approx([v for _, v in expected[key]]), key
        for a, b in zip(whole.history, resumed.history, strict=True):
            assert b["loss"] == pytest.approx(a["loss"]) and b["accuracy"] == a["accuracy"]
