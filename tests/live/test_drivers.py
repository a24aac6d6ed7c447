"""Every driver conforms to the one Driver protocol; the desktop backends pick their
window or viewer driver by mode; the draw loop's budget; a session hands the trainer no
callbacks."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.live import Dashboard, MetricStream, live_dashboard
from resnetlab.live.drivers import DRIVERS, get_driver
from resnetlab.live.drivers.agg import AggDriver
from resnetlab.live.drivers.base import BaseDriver, Driver
from resnetlab.live.drivers.desktop import desktop_driver
from resnetlab.live.drivers.viewer import ViewerDriver
from resnetlab.live.drivers.window import WINDOW_DRIVERS, GtkDriver, QtDriver, TkDriver
from resnetlab.live.scheduler import MAX_DRAW_GAP, DrawBudget

PROTOCOL = (
    "name",
    "draws_from_background",
    "in_process_windows",
    "pending",
    "render_seconds",
    "url",
    "keeps_final",
    "start",
    "draw",
    "stop_timer",
    "finish",
    "stop",
    "wait",
    "grab",
)


def _dash(**options) -> Dashboard:
    return Dashboard(["loss"], stream=MetricStream(), backend="agg", **options)


@pytest.mark.parametrize("backend", ["ipympl", "webagg", "agg"])
def test_in_process_drivers_are_base_drivers_with_the_whole_protocol(backend):
    driver = get_driver(backend)(_dash())  # built, not started: no widget, server, window
    assert isinstance(driver, BaseDriver) and isinstance(driver, Driver)
    for attr in PROTOCOL:
        assert hasattr(driver, attr), attr
    assert driver.draws_from_background and not driver.in_process_windows
    assert driver.pending is False and driver.render_seconds == 0.0 and driver.url is None


@pytest.mark.parametrize("kit", ["qt", "tk", "gtk"])
def test_desktop_backends_build_a_window_or_a_viewer_driver_by_mode(kit):
    window = get_driver(kit)(_dash(), mode="window", interval=0.5)
    assert type(window) is WINDOW_DRIVERS[kit] and isinstance(window, Driver)
    assert not window.draws_from_background and window.in_process_windows
    assert window.interval == 0.5 and window.name == window.toolkit == kit
    viewer = desktop_driver(kit, _dash(), mode="viewer", title="t")
    assert isinstance(viewer, ViewerDriver) and isinstance(viewer, Driver)
    assert not viewer.draws_from_background and not viewer.in_process_windows
    assert viewer.name == viewer.toolkit == kit and viewer.title == "t"
    # outside a notebook kernel "auto" is a window of this process
    assert isinstance(get_driver(kit)(_dash()), WINDOW_DRIVERS[kit])


def test_the_two_driver_tables_have_different_names_and_jobs():
    assert set(DRIVERS) == {"ipympl", "webagg", "agg", "qt", "tk", "gtk"}
    assert all(isinstance(target, str) for target in DRIVERS.values())  # lazy imports
    assert {"qt": QtDriver, "tk": TkDriver, "gtk": GtkDriver} == WINDOW_DRIVERS


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "tab"}, r"mode must be 'auto', 'window' or 'viewer', got 'tab'"),
        ({"pump_every": -1}, r"pump_every >= 0"),
        ({"start_timeout": "soon"}, r"option start_timeout is seconds"),
        ({"port": 1}, r"'gtk' live backend does not take port"),
    ],
)
def test_desktop_options_are_checked_once_for_both_modes(options, message):
    with pytest.raises(ConfigError, match=message):
        get_driver("gtk")(_dash(), **options)
    if "mode" not in options:
        with pytest.raises(ConfigError, match=message):
            ViewerDriver(_dash(), "gtk", **options)


def test_base_driver_defaults_grab_a_png_and_wait_for_nothing(tmp_path):
    dash = _dash()
    dash.stream.log(1, loss=1.0)
    dash.refresh()
    driver = AggDriver(dash)
    driver.start()
    assert driver.wait(0) is True
    driver.stop_timer()  # nothing to stop; the figures stay drawable
    path = driver.grab(tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_draw_budget_lowers_the_rate_of_slow_draws_within_bounds():
    budget = DrawBudget()
    # cheap draws: the wanted rate
    assert budget.pause(0.001, rate_hz=2.0, budget=0.1) == pytest.approx(0.5)
    slow = DrawBudget()
    # a 0.2 s draw at a 10 % budget: 1.8 s of rest after it
    assert slow.pause(0.2, rate_hz=2.0, budget=0.1) == pytest.approx(1.8)
    # one fast round after it does not undo the smoothed cost at once
    assert slow.pause(0.0, rate_hz=2.0, budget=0.1) == pytest.approx(0.7 * 1.8)
    # never longer than MAX_DRAW_GAP, whatever a draw costs
    assert DrawBudget().pause(60.0, rate_hz=2.0, budget=0.1) == MAX_DRAW_GAP


def test_an_agg_session_has_no_window_to_wait_for_and_writes_its_final_snapshot(tmp_path):
    session = live_dashboard(
        MetricStream(), "agg", run_dir=tmp_path, system_monitor=False, in_process=True
    )
    try:
        assert session.wait_closed(0) is True  # no window of this process to wait for
    finally:
        session.close()
    assert (tmp_path / "dashboard-final.png").stat().st_size > 0
