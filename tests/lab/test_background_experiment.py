"""An experiment in the background: arms as concurrent process jobs under one live
comparison, controlled arm by arm, resumed without repeating what finished.

One scenario (real Fashion-MNIST, real worker processes, a real SQLite store, the Agg
dashboard) runs once for the module; each test checks one contract on what it recorded.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from resnetlab.inspect.experiments import experiment_options
from resnetlab.inspect.experiments.stats import summarize, welch
from resnetlab.jobs import JobRegistry
from resnetlab.lab.experiment import ExperimentJob
from resnetlab.states import RunStatus

pytestmark = pytest.mark.slow


def wait_for(
    predicate: Callable[[], object], timeout: float = 120.0, exp: ExperimentJob | None = None
) -> None:
    """Poll ``predicate`` until true; fail the test (not hang) after ``timeout`` s, with
    where the experiment stands."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            where = "" if exp is None else f"\n{exp.status()}\n{exp.scheduler.traceback}"
            raise AssertionError(f"condition not met within {timeout} s{where}")
        time.sleep(0.02)


@dataclass
class Scenario:
    exp: ExperimentJob
    store: Path
    report: Path
    first_report: str = ""
    rows_before_resume: dict[str, list[tuple]] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    b_running_after_a_stopped: bool = False
    c_pending_while_two_ran: bool = False
    lines_after_first_pass: dict[str, set[str]] = field(default_factory=dict)
    lines_at_end: dict[str, set[str]] = field(default_factory=dict)
    samples: list[tuple[int, int]] = field(default_factory=list)  # (draws, points shown)


def _rows(store: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(store) as db:
        out: dict[str, list[tuple]] = {}
        for name, rid, status, start, end in db.execute(
            "SELECT name, id, status, started_at, COALESCE(ended_at, heartbeat) FROM runs ORDER BY id"
        ):
            out.setdefault(name, []).append((rid, status, start, end))
    return out


@pytest.fixture(scope="module")
def scenario(fashion_mnist_dir, tmp_path_factory) -> Scenario:
    tmp = tmp_path_factory.mktemp("background-experiment")
    store = tmp / "runs.db"
    opts = experiment_options(
        "2ep",
        dict(
            subset=512,
            test_subset=64,
            val_size=64,
            depths=(11,),
            width=2,
            seeds=2,
            batch_size=32,
            grad_every=4,
            stem_stride=2,
            store=str(store),
            data_root=str(fashion_mnist_dir),
        ),
    )
    registry = JobRegistry(tmp / "logs")
    exp = ExperimentJob(
        "stack-shortcut",
        opts,
        tmp / "reports",
        parallel=2,
        live="agg",
        live_options={"directory": str(tmp / "live"), "interval": 0.0},
        registry=registry,
    )
    s = Scenario(exp, store, tmp / "reports" / "stack-shortcut.md")
    a, b, c, d = exp.arms
    sampling = threading.Event()

    def sample() -> None:  # what the dashboard shows, as often as it may change
        while not sampling.is_set():
            s.samples.append((exp.dashboard.draws, sum(exp.dashboard.points().values())))
            sampling.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        exp.start()
        sampler.start()
        wait_for(lambda: a.job is not None and b.job is not None)
        s.c_pending_while_two_ran = c.job is None and c.status == RunStatus.PENDING
        # Hold both at their first batch boundary: what follows cannot race their end.
        a.job.pause(wait=0)  # both flags first: a tiny arm can end while one waits
        b.job.pause(wait=0)
        wait_for(lambda: a.job.progress.paused and b.job.progress.paused, exp=exp)
        exp.stop(a.label)  # checkpoint, then end: its slot goes to the next arm
        wait_for(lambda: a.status == RunStatus.STOPPED, exp=exp)
        s.b_running_after_a_stopped = b.job.job.running
        wait_for(lambda: c.job is not None)
        c.job.pause(wait=60)
        exp.kill(c.label)
        wait_for(lambda: c.status == RunStatus.KILLED, exp=exp)
        exp.unpause(b.label)
        assert exp.wait(300) == s.report
        s.lines_after_first_pass = exp.dashboard.lines_per_panel()
        s.first_report = s.report.read_text()
        s.rows_before_resume = _rows(store)
        s.intervals = {
            name: (rows[-1][2], rows[-1][3]) for name, rows in s.rows_before_resume.items()
        }
        exp.resume()
        assert exp.wait(300) == s.report
        s.lines_at_end = exp.dashboard.lines_per_panel()
    finally:
        sampling.set()
        registry.stop_all(timeout=5)
    return s


def _overlap(x: tuple[float, float], y: tuple[float, float]) -> bool:
    return max(x[0], y[0]) < min(x[1], y[1])


def test_arms_run_concurrently_as_process_jobs(scenario):
    exp = scenario.exp
    assert scenario.c_pending_while_two_ran  # two at a time: the third waited its turn
    assert {arm.job.kind for arm in exp.arms} == {"process"}
    names = {row.name for row in exp.registry.status()}
    assert {f"stack-shortcut/{arm.label}" for arm in exp.arms} <= names
    iv = scenario.intervals
    b, c = (f"stack-shortcut/{arm.spec.label}/seed{arm.spec.seed}" for arm in exp.arms[1:3])
    # B (paused) was still running while C ran and was killed: their stored runs overlap.
    assert _overlap(iv[b], iv[c]), iv


def test_stopping_one_arm_leaves_the_others_running(scenario):
    assert scenario.b_running_after_a_stopped


def test_the_comparison_holds_one_line_per_arm_and_keeps_updating(scenario):
    labels = {arm.label for arm in scenario.exp.arms}
    # A was stopped and C killed at their first batch: neither had logged anything yet
    held = {scenario.exp.arms[0].label, scenario.exp.arms[2].label}
    first, end = scenario.lines_after_first_pass, scenario.lines_at_end
    assert set(first) == set(end) == {"training loss", "training accuracy", "held-out accuracy"}
    assert all(lines == labels - held for lines in first.values()), first
    # every arm in every panel (shared axes), once those two re-ran
    assert all(lines == labels for lines in end.values()), end
    draws = [d for d, _ in scenario.samples]
    points = [p for _, p in scenario.samples]
    assert draws == sorted(draws) and points[-1] > points[0]
    # it redrew as the data came in: many distinct states seen, not one final draw
    assert len(set(scenario.samples)) >= 4, sorted(set(scenario.samples))


def test_a_killed_arm_is_reported_and_rerun_while_finished_arms_are_not(scenario):
    exp = scenario.exp
    a, b, c, d = exp.arms
    first = scenario.first_report
    assert "**Incomplete**" in first
    assert f"{a.label} (stopped)" in first and f"{c.label} (killed)" in first
    rows_now = _rows(scenario.store)
    for arm in (b, d):  # finished in the first pass: not run again
        name = arm.run_name(exp.name)
        assert rows_now[name] == scenario.rows_before_resume[name]
        assert arm.attempts == 1
    assert (a.attempts, c.attempts) == (2, 2)
    # the stopped arm continued from its checkpoint, in its own stored run
    a_rows = rows_now[a.run_name(exp.name)]
    assert len(a_rows) == 1 and a_rows[0][1] == "completed"
    assert {arm.status for arm in exp.arms} == {RunStatus.COMPLETED}
    assert "**Incomplete**" not in scenario.report.read_text()


def test_the_reports_statistics_are_the_stores_numbers(scenario):
    exp = scenario.exp
    text = scenario.report.read_text()
    with sqlite3.connect(scenario.store) as db:
        finals = {}
        for arm in exp.arms:
            (metrics,) = db.execute(
                "SELECT final_metrics FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1",
                (arm.run_name(exp.name),),
            ).fetchone()
            finals[arm.label] = json.loads(metrics)
    errors: dict[str, list[float]] = {}
    for arm in exp.arms:
        errors.setdefault(arm.spec.label, []).append(1 - finals[arm.label]["test_accuracy"])
    for label, values in errors.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
        assert summarize(values).text() in row
    w = welch(errors["resnetv2-11+stack"], errors["resnetv2-11"])
    row = next(line for line in text.splitlines() if line.startswith("| resnetv2-11+stack |"))
    assert f"{100 * w.diff:+.2f} ± {100 * w.se:.2f}" in row
    assert re.search(rf"Welch t={w.t:.2f}, dof {w.dof:.1f}", text)
    assert "4 runs as process jobs, 2 at a time" in text
