"""Every path that carries records appends them checked exactly as ``MetricStream.append``.

The worker process of a job, a trainer's forwarding stream, the store follower of
``resnetlab watch``: a bad value raises the stream's own ConfigError (key, value, step)
where the record is made, and nothing of it travels.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import metrics_workers
import pytest

from resnetlab.errors import ConfigError
from resnetlab.jobs import JobRegistry
from resnetlab.jobs.training import ForwardingStream
from resnetlab.jobs.worker import WorkerContext
from resnetlab.live.watch import RunFollower, records_from_rows
from resnetlab.metrics.stream import MetricStream
from resnetlab.metrics.transport import Producer, append_rows

pytestmark = pytest.mark.timeout(120)


def _stream_error(step, metrics) -> str:
    with pytest.raises(ConfigError) as info:
        MetricStream().append(step, metrics)
    return str(info.value)


class Rows(Producer):
    def __init__(self) -> None:
        self.rows: list = []

    def send_rows(self, rows):
        self.rows.extend(rows)


def test_a_worker_context_checks_before_sending_and_sends_codec_rows():
    reader, writer = multiprocessing.Pipe(duplex=False)
    ctx = WorkerContext(1, "w", writer, {"stop": threading.Event()})
    with pytest.raises(ConfigError) as info:
        ctx.append(3, {"loss": "nan?"}, epoch=0)
    assert str(info.value) == _stream_error(3, {"loss": "nan?"})
    assert not reader.poll(0)  # nothing was sent
    ctx.log(4, loss=0.5)
    import pickle

    kind, rows = pickle.loads(reader.recv_bytes())
    parent = MetricStream()
    assert kind == "metric" and append_rows(parent, rows) == 1
    assert parent.last("loss") == 0.5 and parent.series("loss")[0].tolist() == [4]


def test_a_bad_value_in_a_process_job_fails_it_with_the_streams_message(tmp_path):
    registry = JobRegistry(tmp_path / "logs", stop_timeout=2.0)
    try:
        job = registry.new(metrics_workers.logs_then_a_bad_value, 5, kind="process")
        assert job.wait(60) == "failed"
        assert isinstance(job.exception, ConfigError)
        assert str(job.exception) == _stream_error(5, {"loss": None})
        assert job.stream.series("loss")[0].tolist() == [0, 1, 2, 3, 4]  # the good ones came
    finally:
        registry.stop_all(timeout=1.0)


def test_a_forwarding_stream_checks_once_and_keeps_and_sends_the_same_record():
    sent = Rows()
    s = ForwardingStream(sent, name="worker")
    with pytest.raises(ConfigError) as info:
        s.append(7, {"accuracy": 0.5, "loss": [1.0]})
    assert str(info.value) == _stream_error(7, {"accuracy": 0.5, "loss": [1.0]})
    assert len(s) == 0 and sent.rows == []
    s.append(8, {"loss": 2}, epoch=1)  # no time given: one time for both copies
    (local,) = s.read_since(0)[0]
    assert sent.rows == [(8, local.time, {"loss": 2.0}, 1)]


def test_stored_rows_become_the_records_that_were_logged(tmp_path):
    from resnetlab.store import RunStore

    with RunStore(tmp_path / "r.db") as store:
        run = store.create_run("followed")
        store.log_metrics(run, 1, {"loss": 2.0, "accuracy": 0.1}, epoch=0, time_s=10.0)
        store.log_metrics(run, 1, {"sys/cpu_percent": 50.0}, time_s=10.5)
        store.log_metrics(run, 2, {"loss": float("nan")}, epoch=0, time_s=11.0)
        store.flush()
        records = records_from_rows(store.metrics(run))
        assert [(r.step, sorted(r.metrics), r.epoch, r.time) for r in records] == [
            (1, ["accuracy", "loss"], 0, 10.0),
            (1, ["sys/cpu_percent"], None, 10.5),
            (2, ["loss"], 0, 11.0),
        ]
        live = MetricStream()
        follower = RunFollower(store, run, live)
        assert follower.poll() == 4 and len(live) == 3
        store.log_metrics(run, 3, {"loss": 1.0}, epoch=1, time_s=time.time())
        store.flush()
        assert follower.poll() == 1 and live.last("loss") == 1.0  # only what is new
