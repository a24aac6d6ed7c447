"""MetricStream's core: concurrent appends, readers, the max_records bound, wait(), bad input."""

from __future__ import annotations

import queue
import threading

import pytest

from resnetlab.errors import ConfigError
from resnetlab.metrics.stream import MetricStream
from resnetlab.metrics.transport import QueueFeed


def test_concurrent_appends_lose_nothing_and_keep_each_producers_order():
    s = MetricStream()
    n, producers = 2000, 4
    start = threading.Barrier(producers)

    def produce(k: int) -> None:
        start.wait()  # all producers append at the same time
        for i in range(n):
            s.append(i, {f"p{k}": float(i), "shared": float(k)})

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s) == n * producers
    records, position = s.read_since(0)
    assert len(records) == n * producers and position == n * producers
    for k in range(producers):
        steps, values = s.series(f"p{k}")
        assert steps.tolist() == list(range(n))  # one producer's steps stay in its order
        assert values.tolist() == [float(i) for i in range(n)]
        mine = [r.step for r in records if f"p{k}" in r.metrics]
        assert mine == list(range(n))  # and so do its records
    assert s.series_length("shared") == n * producers


def test_read_since_and_readers_return_only_what_is_new():
    s = MetricStream()
    for i in range(3):
        s.log(i, loss=float(i))
    records, pos = s.read_since(0)
    assert [r.step for r in records] == [0, 1, 2] and pos == 3
    assert s.read_since(pos) == ([], 3)  # nothing new: nothing returned
    s.log(3, loss=3.0)
    s.log(4, loss=4.0, accuracy=0.5)
    records, pos = s.read_since(pos)
    assert [(r.step, dict(r.metrics)) for r in records] == [
        (3, {"loss": 3.0}),
        (4, {"loss": 4.0, "accuracy": 0.5}),
    ]
    assert pos == 5
    a, b = s.reader(), s.reader(from_start=False)  # each reader has its own cursor
    assert len(a.read()) == 5 and b.read() == []
    s.log(5, loss=5.0)
    assert [r.step for r in a.read()] == [5] and [r.step for r in b.read()] == [5]
    assert a.read() == [] and b.read() == []


def test_max_records_bounds_records_and_every_series():
    s = MetricStream(max_records=100)
    slow = s.reader()  # a reader that falls behind
    for i in range(20_000):
        metrics = {"loss": float(i)}
        if i % 10 == 0:
            metrics["val_loss"] = float(i)  # a sparse key
        s.append(i, metrics)
    assert len(s) == 20_000  # positions keep counting...
    records, pos = s.read_since(0)
    assert [r.step for r in records] == list(range(19_900, 20_000)) and pos == 20_000
    assert [r.step for r in slow.read()] == list(range(19_900, 20_000))  # ...it skips the dropped
    steps, values = s.series("loss")  # ...and each series keeps its newest 100 values
    assert steps.tolist() == list(range(19_900, 20_000)) and values[-1] == 19_999.0
    assert s.series_length("loss") == 100 and s.last("loss") == 19_999.0
    steps, _ = s.series("val_loss")
    assert steps.tolist() == list(range(19_000, 20_000, 10))
    assert s.series("loss", since=19_990)[0].tolist() == list(range(19_990, 20_000))
    # memory stays bounded: the column's storage did not grow with the 20,000 appends
    for key in ("loss", "val_loss"):
        column = s._columns[key]
        assert column.values.shape[0] <= 1024, column.values.shape
    # the version still moves, so a dashboard sees new data although lengths are constant
    v = s.series_version("loss")
    s.log(20_000, loss=1.0)
    assert s.series_version("loss") == v + 1 and s.series_length("loss") == 100


def test_a_dashboard_keeps_following_a_bounded_stream():
    from resnetlab.live import Dashboard

    s = MetricStream(max_records=50)
    dash = Dashboard(["loss"], stream=s, backend="agg")
    for i in range(60):
        s.log(i, loss=1.0 / (i + 1))
    assert dash.refresh() is True
    s.log(60, loss=0.001)  # the length stays at 50: the new point must still be drawn
    assert dash.refresh() is True
    line = dash.figures[0].axes[0].get_lines()[0]
    assert line.get_xdata()[-1] == 60 and len(line.get_xdata()) == 50
    assert dash.refresh() is False


def test_wait_blocks_until_new_records_or_the_timeout():
    s = MetricStream()
    s.log(0, loss=1.0)
    assert s.wait(0, timeout=0) is True  # already more than 0 records
    assert s.wait(1, timeout=0.05) is False  # nothing new: times out
    result: list[bool] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        result.append(s.wait(1, timeout=60))

    t = threading.Thread(target=waiter)
    t.start()
    waiting.wait(60)
    s.log(1, loss=0.5)
    t.join(60)
    assert result == [True]


@pytest.mark.parametrize("value", [None, "abc", [1.0, 2.0]])
def test_a_value_that_is_not_a_number_names_key_value_and_step(value):
    s = MetricStream()
    s.log(0, loss=1.0)
    with pytest.raises(ConfigError, match=rf"'loss' at step 7 is {value!r}".replace("[", r"\[")):
        s.log(7, accuracy=0.5, loss=value)
    # nothing of the bad call was appended
    assert len(s) == 1 and s.keys() == ["loss"]
    feed = QueueFeed(queue.Queue())
    with pytest.raises(ConfigError, match="'loss' at step 7"):
        feed.log(7, loss=value)
    assert feed.queue.empty()  # the producer's error, before anything was sent


def test_a_bad_step_or_metrics_is_a_config_error():
    s = MetricStream()
    with pytest.raises(ConfigError, match="step must be an integer, got 'x'"):
        s.log("x", loss=1.0)
    with pytest.raises(ConfigError, match="must be a mapping"):
        s.append(1, [("loss", 1.0)])
    assert len(s) == 0
