"""The one transport: codec, feed (producer + pump), mirror, and every path built on it."""

from __future__ import annotations

import json
import math
import multiprocessing
import queue
import threading
import time

import pytest

from resnetlab.errors import ConfigError
from resnetlab.metrics.stream import MetricStream, Record, make_record
from resnetlab.metrics.transport import (
    FeedPump,
    Producer,
    QueueFeed,
    StreamMirror,
    append_rows,
    decode,
    decode_batch,
    encode,
    encode_batch,
    pump,
)

BAD_VALUES = [None, "abc", [1.0, 2.0]]


def _bad_value_message(value) -> str:
    """What MetricStream.append says about ``loss=value`` at step 7 (the one message)."""
    with pytest.raises(ConfigError) as info:
        MetricStream().log(7, accuracy=0.5, loss=value)
    return str(info.value)


# -- codec -------------------------------------------------------------------------------
def test_a_record_survives_pickle_and_json_as_a_row():
    rec = make_record(3, {"loss": 0.25, "nan": float("nan")}, time=12.5, epoch=1)
    row = encode(rec)
    assert row == (3, 12.5, {"loss": 0.25, "nan": row[2]["nan"]}, 1)
    import pickle

    assert decode(pickle.loads(pickle.dumps(row))).metrics["loss"] == 0.25
    back = decode_batch(json.loads(json.dumps(encode_batch([rec, rec]))))  # lists, NaN
    assert [r.step for r in back] == [3, 3] and back[0].epoch == 1 and back[0].time == 12.5
    assert math.isnan(back[1].metrics["nan"])
    assert isinstance(back[0], Record)


@pytest.mark.parametrize("value", BAD_VALUES)
def test_decoding_checks_rows_exactly_as_append(value):
    with pytest.raises(ConfigError) as info:
        decode((7, 1.0, {"accuracy": 0.5, "loss": value}, None))
    assert str(info.value) == _bad_value_message(value)
    with pytest.raises(ConfigError, match="a metric row is"):
        decode((1, 2.0))
    s = MetricStream()
    with pytest.raises(ConfigError, match="'loss' at step 7"):
        append_rows(s, [(6, 1.0, {"loss": 1.0}, None), (7, 1.0, {"loss": value}, None)])
    assert len(s) == 0  # a batch with a bad row appends nothing of it


# -- feed --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_VALUES)
def test_every_producer_raises_appends_error_before_sending(value):
    sent: list = []

    class ListProducer(Producer):
        def send_rows(self, rows):
            sent.extend(rows)

    for producer in (ListProducer(), QueueFeed(queue.Queue())):
        with pytest.raises(ConfigError) as info:
            producer.log(7, accuracy=0.5, loss=value)
        assert str(info.value) == _bad_value_message(value)
    assert sent == []
    ListProducer().append(2, {"loss": 1}, time=5.0, epoch=0)
    assert sent == [(2, 5.0, {"loss": 1.0}, 0)]  # plain floats on the wire


def _worker(feed, n):
    for i in range(n):
        feed.log(i, loss=1.0 / (i + 1), worker_pid=float(multiprocessing.current_process().pid))
    feed.close()


def test_queue_feed_from_a_spawned_process():
    s = MetricStream()
    ctx = multiprocessing.get_context("spawn")
    feed_pump = FeedPump(s, context=ctx).start()
    proc = ctx.Process(target=_worker, args=(feed_pump.feed, 300))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert feed_pump.wait(30)  # the worker's close() ends the pump once all is appended
    feed_pump.stop()
    steps, loss = s.series("loss")
    assert steps.tolist() == list(range(300)) and feed_pump.count == 300
    assert loss[9] == pytest.approx(0.1)
    assert s.last("worker_pid") == proc.pid  # it really came from the other process


def test_a_stopped_pump_keeps_what_was_queued_and_drops_a_foreign_bad_batch(caplog):
    s = MetricStream()
    q: queue.Queue = queue.Queue()
    q.put([(0, 1.0, {"loss": 1.0}, None)])
    q.put([(1, 1.0, {"loss": "x"}, None)])  # not from a Producer: no check was made
    q.put(17)  # not even a batch
    q.put([(2, 1.0, {"loss": 0.5}, None)])
    stop = threading.Event()
    stop.set()  # asked to stop before it started: it still drains the queue
    assert pump(s, q, should_stop=stop.is_set, poll=0.01) == 2
    assert s.series("loss")[0].tolist() == [0, 2]
    assert "malformed batch" in caplog.text and "'loss' at step 1" in caplog.text


# -- mirror ------------------------------------------------------------------------------
def test_mirror_batches_and_keeps_records_when_the_sink_fails():
    s = MetricStream()
    got: list = []
    fail = {"n": 1}
    accepted = threading.Condition()

    def sink(records):
        if fail["n"]:
            fail["n"] -= 1
            raise OSError("database is locked")
        with accepted:
            got.extend(records)
            accepted.notify_all()

    m = StreamMirror(s, sink, interval=0.05).start()
    for i in range(50):
        s.log(i, loss=float(i))
    # the first batch fails, the mirror keeps it and a later batch writes it
    with accepted:
        assert accepted.wait_for(lambda: len(got) >= 50, timeout=30)
    assert fail["n"] == 0 and isinstance(m.error, OSError)
    for i in range(50, 60):
        s.log(i, loss=float(i))
    m.stop()
    assert [r.step for r in got] == list(range(60))  # nothing lost by the failed write
    assert m.backlog == 0


def test_a_waking_mirror_hands_over_records_as_they_come():
    s = MetricStream()
    batches: queue.Queue = queue.Queue()
    m = StreamMirror(s, batches.put, interval=3600, wake=True, from_start=False)
    s.log(0, loss=1.0)  # before start, but after the mirror was made: it is new to it
    m.start()
    assert [r.step for r in batches.get(timeout=30)] == [0]
    s.log(1, loss=0.5)
    assert [r.step for r in batches.get(timeout=30)] == [1]  # not an hour later
    m.stop(5)


def test_mirror_from_now_skips_what_the_stream_had():
    s = MetricStream()
    s.log(0, loss=1.0)
    got: list = []
    m = StreamMirror(s, got.extend, interval=3600, from_start=False)
    s.log(1, loss=0.5)
    assert m.backlog == 1
    m.flush()
    assert [r.step for r in got] == [1]


def test_a_sink_whose_other_end_is_gone_cancels_its_mirror():
    s = MetricStream()
    calls: list = []

    def sink(records):
        calls.append(len(records))
        m.cancel()  # e.g. a broken pipe: nobody reads any more

    m = StreamMirror(s, sink, interval=3600, wake=True).start()
    s.log(0, loss=1.0)
    deadline = time.monotonic() + 30
    while m.is_alive() and time.monotonic() < deadline:  # it ends by itself
        time.sleep(0.01)
    assert not m.is_alive()
    s.log(1, loss=0.5)
    m.stop()  # hands nothing more to a sink that gave up
    assert calls == [1]
