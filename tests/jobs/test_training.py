"""Training as a job: paused, resumed, stopped (with or without a checkpoint), killed.

The fast control tests drive the real ``Trainer`` on a tiny synthetic task
(``workers.tiny_train``); the last two run ``resnetlab.train(..., background=...)`` on
real Fashion-MNIST images in a thread and in a worker process.
"""

from __future__ import annotations

import time
from pathlib import Path

import jobs_workers as workers
import pytest
from jobs_helpers import registry_fixture, wait_for  # noqa: F401 (the registry fixture)

from resnetlab.errors import JobError
from resnetlab.jobs.training import TrainingJob, start_training
from resnetlab.states import RunStatus

pytest.importorskip("torch", reason="torch not installed")
pytestmark = pytest.mark.timeout(90)

# The worker-process run spawns an interpreter, imports torch and reads Fashion-MNIST
# before its first batch: seconds when idle, much longer on a loaded machine.
TWO_EPOCHS_WITHIN = 150.0  # seconds the process test waits for two epochs to be done


def test_thread_training_pauses_resumes_and_stops_with_a_checkpoint(registry, tmp_path) -> None:
    from resnetlab.training.checkpoint import load_checkpoint

    job = start_training(
        kind="thread",
        train_fn=workers.tiny_train,
        registry=registry,
        epochs=50,
        run_dir=str(tmp_path),
        batch_delay=0.01,
    )
    assert isinstance(job, TrainingJob)
    assert wait_for(lambda: job.progress.step >= 3, 60), job.progress
    job.pause(wait=60)
    assert job.status == "paused" and job.progress.paused
    assert job.status is RunStatus.PAUSED  # the shared vocabulary of jobs, trainer and store
    frozen = job.progress.step
    time.sleep(0.2)
    assert job.progress.step == frozen  # paused at a batch boundary: no step advances
    job.resume()
    assert wait_for(lambda: job.progress.step > frozen, 60)
    assert job.stop(save=True) == "stopped"
    result = job.wait()
    assert result["status"] == "stopped" and result["epoch"] < 50
    saved = load_checkpoint(Path(result["last_checkpoint"]))
    assert saved["step"] == result["step"]  # the stop checkpoint is the last step trained
    # metrics went straight into job.stream, in this process
    steps, losses = job.stream.series("loss")
    assert len(steps) >= 2 and steps[-1] <= result["step"]
    assert "trainer stopped" in job.tail(1)
    assert registry.get(job.id).kind == "thread"


def test_stop_without_saving_writes_no_stop_checkpoint(registry, tmp_path) -> None:
    from resnetlab.training.checkpoint import load_checkpoint

    job = start_training(
        kind="thread",
        train_fn=workers.tiny_train,
        registry=registry,
        epochs=500,
        run_dir=str(tmp_path),
        batch_delay=0.005,
    )
    assert wait_for(lambda: job.progress.step >= 14, 60), job.progress  # an epoch is saved
    assert job.stop(save=False) == "stopped"
    result = job.wait()
    assert result["status"] == "stopped" and result["step"] >= 14
    # Mid-epoch or on an epoch boundary (12 batches per epoch), no checkpoint is written
    # from the stop on: the only ones on disk are the epochs completed before it.
    saved = sorted(int(p.stem.removeprefix("ckpt-step")) for p in tmp_path.glob("ckpt-step*.pt"))
    assert saved and all(step % 12 == 0 and step < result["step"] for step in saved), (
        saved,
        result,
    )
    # last.pt is the last epoch checkpoint, not one taken at the stop
    assert load_checkpoint(Path(result["last_checkpoint"]))["step"] == saved[-1]


def test_the_recipe_job_leaves_the_live_dashboard_to_its_caller(registry) -> None:
    # resnetlab.train(live=..., background=...) starts it beside the job, on job.stream.
    with pytest.raises(JobError, match=r"resnetlab.train\(\.\.\., live=\.\.\., background=True\)"):
        start_training("simple-cnn", registry=registry, live="agg")
    with pytest.raises(JobError, match="use 'thread' or 'process'"):
        start_training("simple-cnn", registry=registry, kind="loop")
    assert len(registry.status()) == 0  # refused before any job started


@pytest.mark.timeout(180)  # job.wait(120) below, plus the data and model setup
def test_real_train_in_the_background_thread(
    registry, fashion_mnist_dir, tmp_path, monkeypatch
) -> None:
    import resnetlab
    from resnetlab import jobs

    monkeypatch.setattr(jobs, "registry", registry)
    job = resnetlab.train(
        "simple-cnn",
        data="fashion-mnist",
        data_dir=fashion_mnist_dir,
        epochs=1,
        train_limit=192,  # training images, after the 64 validation ones
        test_limit=128,
        val_size=64,
        batch_size=32,
        device="cpu",
        store=None,
        run_dir=str(tmp_path),
        background=True,
    )
    assert isinstance(job, TrainingJob) and job.kind == "thread"
    result = job.wait(120)
    assert result.status == "completed" and 0 <= result.test_accuracy <= 1
    assert job.progress.step == job.progress.total_steps == 6  # 192 training images / 32
    assert job.stream is result.stream and job.stream.last("loss") is not None


@pytest.mark.timeout(TWO_EPOCHS_WITHIN + 90)
def test_real_train_in_a_worker_process_streams_pauses_and_survives_kill(
    registry, fashion_mnist_dir, tmp_path, monkeypatch
) -> None:
    import resnetlab
    from resnetlab import jobs
    from resnetlab.training.checkpoint import load_checkpoint

    monkeypatch.setattr(jobs, "registry", registry)
    job = resnetlab.train(
        "simple-cnn",
        data="fashion-mnist",
        data_dir=str(fashion_mnist_dir),
        epochs=200,
        train_limit=128,
        val_size=0,
        evaluate_test=False,
        batch_size=32,
        device="cpu",
        store=None,
        run_dir=str(tmp_path),
        background="process",
    )
    assert job.kind == "process"
    assert wait_for(lambda: job.progress.epoch >= 2, TWO_EPOCHS_WITHIN), (job.progress, job.tail())
    assert len(job.stream.series("loss")[0]) >= 2  # forwarded from the worker into this process
    job.pause(wait=60)
    assert job.status == "paused"
    frozen = job.progress.step
    time.sleep(0.3)
    assert job.progress.step == frozen  # paused at a batch boundary
    job.resume()
    assert wait_for(lambda: job.progress.step > frozen, 60)
    assert job.kill(grace=20.0) == "killed" and job.status == "killed"
    with pytest.raises(JobError, match="killed"):
        job.wait()
    state = load_checkpoint(tmp_path)  # the last epoch checkpoint stays loadable
    assert state["epoch"] >= 2


@pytest.mark.timeout(300)
def test_concurrent_thread_jobs_with_one_seed_train_the_same_as_one_alone(
    registry, fashion_mnist_dir, monkeypatch
) -> None:
    """simple-cnn has dropout: its masks come from torch's global generator, which the
    threads of one process share (as do the model inits and the trainer's seeding)."""
    import threading

    import resnetlab
    from resnetlab import jobs
    from resnetlab.training.callbacks import LambdaCallback

    monkeypatch.setattr(jobs, "registry", registry)
    settings = dict(
        data="fashion-mnist",
        data_dir=fashion_mnist_dir,
        epochs=1,
        train_limit=640,
        val_size=64,
        test_limit=256,
        batch_size=32,
        device="cpu",
        store=None,
        seed=3,
        live=None,
    )
    # Both jobs reach their first step, then train side by side (a condition, not a sleep).
    together = threading.Barrier(2, timeout=120)
    meet = LambdaCallback(on_batch_end=lambda t, logs: together.wait() if t.step == 1 else None)
    pair = [
        resnetlab.train("simple-cnn", background=True, callbacks=[meet], **settings)
        for _ in range(2)
    ]
    results = [job.wait(240) for job in pair]
    alone = resnetlab.train("simple-cnn", progress=False, verbose=False, **settings)

    def numbers(result):
        return [h["loss"] for h in result.history], result.test_metrics

    assert all(r.status == "completed" for r in results)
    assert numbers(results[0]) == numbers(results[1]) == numbers(alone)


SCRIPT_ENDING_WITH_A_JOB = """
import sys
import time

import resnetlab

job = resnetlab.train(
    "resnetv2-micro", epochs=50, train_limit=512, val_size=64, data_dir=sys.argv[1],
    store="runs.db", run_name="bg", live=None, background=True,
)
while not len(job.stream.series("loss")[0]) and job.running:  # training has begun
    time.sleep(0.05)  # polling, as a user's script would
print("ending with the job running:", job.running, flush=True)
"""


@pytest.mark.timeout(600)  # a fresh interpreter imports torch and loads the data
def test_a_script_that_ends_while_a_thread_job_trains_exits_cleanly_with_a_checkpoint(
    fashion_mnist_dir, tmp_path
) -> None:
    import subprocess
    import sys

    (tmp_path / "script.py").write_text(SCRIPT_ENDING_WITH_A_JOB)
    proc = subprocess.run(
        [sys.executable, "script.py", str(fashion_mnist_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Before: the 1 s exit wait passed, the interpreter finalised with the thread inside
    # torch, and the process aborted (SIGABRT, exit 134) without a checkpoint.
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ending with the job running: True" in proc.stdout
    from resnetlab.store import RunStore
    from resnetlab.training.checkpoint import load_checkpoint

    with RunStore(tmp_path / "runs.db", read_only=True) as store:
        run = store.get_run("bg")
    assert run.status == RunStatus.STOPPED
    assert load_checkpoint(run.checkpoint_last)["step"] >= 1
