"""MetricStream listeners: called after each append, on the appending thread, outside the
stream's lock; a failing listener is logged and never reaches the producer."""

from __future__ import annotations

import logging
import threading

import pytest

from resnetlab.errors import ConfigError
from resnetlab.metrics.stream import MetricStream, Record


def test_listeners_get_each_record_on_the_appending_thread_in_order():
    s = MetricStream()
    seen: list[tuple[Record, threading.Thread]] = []
    s.add_listener(lambda rec: seen.append((rec, threading.current_thread())))

    def produce():
        s.log(1, loss=1.0)
        s.append(2, {"loss": 0.5}, epoch=0)

    worker = threading.Thread(target=produce, name="producer")
    worker.start()
    worker.join()
    assert [(r.step, dict(r.metrics), r.epoch) for r, _ in seen] == [
        (1, {"loss": 1.0}, None),
        (2, {"loss": 0.5}, 0),
    ]
    assert all(thread is worker for _, thread in seen)
    assert len(s) == 2  # the record is in the stream when its listener runs


def test_a_listener_runs_outside_the_lock():
    s = MetricStream()
    other_reads: list[list[str]] = []

    def listener(rec):
        # Another thread must get the stream's lock while the listener runs; inside the
        # lock it would wait for us (we join it) and never finish.
        reader = threading.Thread(target=lambda: other_reads.append(s.keys()))
        reader.start()
        reader.join(30)
        assert not reader.is_alive()

    s.add_listener(listener)
    s.log(1, loss=1.0)
    assert other_reads == [["loss"]]


def test_a_failing_listener_is_logged_and_the_others_still_run(caplog):
    s = MetricStream(name="noisy")
    calls = []

    def broken(rec):
        raise RuntimeError("consumer bug")

    s.add_listener(broken)
    s.add_listener(lambda rec: calls.append(rec.step))
    with caplog.at_level(logging.ERROR, logger="resnetlab.metrics.stream"):
        s.log(3, loss=1.0)  # does not raise
    assert calls == [3] and len(s) == 1
    assert "consumer bug" in caplog.text and "'noisy'" in caplog.text


def test_removed_listeners_and_rejected_appends_call_nothing():
    s = MetricStream()
    calls = []

    def listener(rec):
        calls.append(rec.step)

    s.add_listener(listener)
    with pytest.raises(ConfigError):
        s.log(1, loss="high")
    s.log(2, loss=1.0)
    s.remove_listener(listener)
    s.remove_listener(listener)  # no error the second time
    s.log(3, loss=1.0)
    assert calls == [2]
