"""Dashboard: artists updated in place, options, export, errors."""

from __future__ import annotations

import csv
import gc

import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from resnetlab.errors import BackendError, ConfigError
from resnetlab.live import Dashboard, MetricStream, Panel
from resnetlab.live.drivers import DRIVERS, get_driver, resolve_backend_name


def _figures_alive() -> int:
    gc.collect()
    return sum(isinstance(o, matplotlib.figure.Figure) for o in gc.get_objects())


def _line(dash, panel_title, label):
    for fig in dash.figures:
        for ax in fig.axes:
            if ax.get_title() == panel_title:
                for line in ax.get_lines():
                    if line.get_label() == label:
                        return line
    raise AssertionError(f"no line {label!r} on panel {panel_title!r}")


def test_refresh_moves_existing_artists_without_new_figures():
    s = MetricStream()
    dash = Dashboard(["loss", "accuracy", "lr"], stream=s, backend="agg")
    assert dash.refresh() is False  # nothing to show yet
    s.log(0, loss=2.0, accuracy=0.1, lr=0.1)
    s.log(1, loss=1.5, accuracy=0.3, lr=0.1)
    assert dash.refresh() is True
    line = _line(dash, "loss", "loss")
    figs_before, lines_before = _figures_alive(), len(dash.figures[0].axes[0].get_lines())
    fig_ids = [id(f) for f in dash.figures]
    for i in range(2, 50):
        s.log(i, loss=2.0 / (i + 1), accuracy=i / 50, lr=0.1)
        assert dash.refresh()
        dash.draw()
    assert _line(dash, "loss", "loss") is line  # the same Line2D, moved
    xs, ys = line.get_data()
    assert list(xs) == list(range(50)) and ys[-1] == pytest.approx(2.0 / 50)
    assert [id(f) for f in dash.figures] == fig_ids
    assert _figures_alive() == figs_before
    assert len(dash.figures[0].axes[0].get_lines()) == lines_before
    lo, hi = dash.figures[0].axes[0].get_ylim()
    assert lo <= 2.0 / 50 and hi >= 2.0  # rescaled to the data
    assert dash.refresh() is False  # nothing new: nothing to draw


def test_new_keys_get_lines_and_val_keys_share_the_colour():
    s = MetricStream()
    dash = Dashboard(["loss"], stream=s, backend="agg")
    s.log(0, loss=1.0)
    dash.refresh()
    s.log(10, val_loss=1.2)
    dash.refresh()
    train, val = _line(dash, "loss", "loss"), _line(dash, "loss", "val_loss")
    assert train.get_color() == val.get_color() and val.get_linestyle() == "--"


def test_long_series_are_decimated_but_keep_the_spike():
    s = MetricStream()
    n = 200_000
    values = np.sin(np.arange(n) / 1000.0)
    values[154_321] = 25.0
    dash = Dashboard(["loss"], stream=s, backend="agg", max_points=800)
    for i in range(n):
        s.append(i, {"loss": float(values[i])})
        if i == 500:
            dash.refresh()
            assert len(_line(dash, "loss", "loss").get_xdata()) == 501  # short: all points
    dash.refresh()
    xs, ys = _line(dash, "loss", "loss").get_data()
    assert len(xs) <= 804
    assert max(ys) == 25.0 and min(ys) == pytest.approx(-1.0, abs=1e-4) and xs[-1] == n - 1


def test_panel_options_logy_window_smoothing():
    s = MetricStream()
    panels = [
        Panel("loss", ("loss",), logy=True, smoothing=0.9, window=100),
        Panel("custom", ("my/*",)),
    ]
    dash = Dashboard(panels, stream=s, backend="agg")
    rng = np.random.default_rng(1)
    for i in range(1000):
        s.log(i, loss=float(np.exp(-i / 300) * (1 + 0.5 * rng.random())), **{"my/a": i, "my/b": -i})
    dash.refresh()
    ax = dash.figures[0].axes[0]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo >= 899 - 1 and hi >= 999
    smooth = _line(dash, "loss", "loss")
    raw = [ln for ln in ax.get_lines() if ln is not smooth][0]
    assert np.std(np.diff(smooth.get_ydata())) < 0.2 * np.std(np.diff(raw.get_ydata()))
    assert {ln.get_label() for ln in dash.figures[0].axes[1].get_lines()} == {"my/a", "my/b"}


def test_grad_norm_heatmap_rows_are_layers():
    s = MetricStream()
    dash = Dashboard(["grad_norms"], stream=s, backend="agg")
    layers = [f"stacks.{i}.units.0.conv" for i in range(6)]
    for step in range(50):
        s.append(step, {f"grad_norm/{name}": 10.0**-i for i, name in enumerate(layers)})
    dash.refresh()
    image = dash.figures[0].axes[0].get_images()[0]
    data = np.asarray(image.get_array())
    assert data.shape[0] == len(layers)
    np.testing.assert_allclose(data[:, -1], [-float(i) for i in range(6)])  # log10 per layer
    labels = [t.get_text() for t in dash.figures[0].axes[0].get_yticklabels()]
    assert labels[0] == "stacks.0.units.0.conv"


def test_compare_runs_draws_other_stream_dotted():
    old = MetricStream(name="run-1")
    for i in range(20):
        old.log(i, loss=3.0 - i * 0.1)
    s = MetricStream()
    dash = Dashboard(["loss"], stream=s, backend="agg", compare={"run-1": old})
    s.log(0, loss=2.0)
    dash.refresh()
    other = _line(dash, "loss", "loss (run-1)")
    assert other.get_linestyle() == ":" and other.get_ydata()[0] == 3.0


def test_update_save_and_csv(tmp_path):
    s = MetricStream()
    dash = Dashboard(["loss", "accuracy"], stream=s, backend="agg")
    for i in range(10):
        dash.update(loss=1.0 / (i + 1), accuracy=i / 10)
    dash.update(20, val_loss=0.5)
    png, svg = dash.save(tmp_path / "d.png")[0], dash.save(tmp_path / "d.svg")[0]
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400
    assert svg.read_text().lstrip().startswith("<?xml")
    with open(dash.to_csv(tmp_path / "m.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == [str(i) for i in range(10)] + ["20"]
    assert float(rows[3]["loss"]) == pytest.approx(0.25) and rows[-1]["val_loss"] == "0.5"
    with pytest.raises(ConfigError, match=r"\.png, \.svg"):
        dash.save(tmp_path / "d.jpg")


def test_several_figures_each_created_once(tmp_path):
    s = MetricStream()
    dash = Dashboard([["loss", "accuracy"], ["cpu", "ram"]], stream=s, backend="agg")
    assert len(dash.figures) == 2 and [len(f.axes) for f in dash.figures] == [2, 2]
    paths = dash.save(tmp_path / "d.png")
    assert [p.name for p in paths] == ["d-1.png", "d-2.png"]


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendError) as err:
        resolve_backend_name("plotly")
    for name in ("ipympl", "webagg", "agg", "qt", "tk", "gtk"):
        assert name in str(err.value)
    assert set(DRIVERS) == {"ipympl", "webagg", "agg", "qt", "tk", "gtk"}
    assert resolve_backend_name("QtAgg") == "qt" and resolve_backend_name("widget") == "ipympl"
    assert get_driver("agg").__name__ == "AggDriver"


def test_bad_panel_options_are_config_errors():
    with pytest.raises(ConfigError, match="smoothing"):
        Panel("x", ("x",), smoothing=1.5)
    with pytest.raises(ConfigError, match="window"):
        Panel("x", ("x",), window=0)
    with pytest.raises(ConfigError, match="does not take"):
        Dashboard(["loss"], stream=MetricStream(), backend="agg", prot=1).show()


@pytest.mark.parametrize(
    "backend, options, message",
    [
        # a desktop driver checks option names like the others (no window is opened)
        ("qt", {"port": 1}, r"'qt' live backend does not take port; its options: interval, mode"),
        ("tk", {"interval": "x"}, r"option interval is seconds \(a number\), got 'x'"),
        ("webagg", {"port": "abc"}, r"port must be a number .* got 'abc'"),
        ("webagg", {"port": 70000}, r"port must be in 0\.\.65535"),
        ("agg", {"interval": "x"}, r"interval is seconds between snapshots, got 'x'"),
    ],
)
def test_bad_driver_options_are_config_errors_that_name_them(backend, options, message):
    dash = Dashboard(["loss"], stream=MetricStream(), backend=backend, **options)
    with pytest.raises(ConfigError, match=message):
        dash.show()
    assert dash.driver is None


def test_compare_run_with_a_missing_store_is_an_error_and_creates_nothing(tmp_path):
    from resnetlab.errors import StoreError

    dash = Dashboard(["loss"], stream=MetricStream(), backend="agg")
    with pytest.raises(StoreError, match=r"no run store at .*typo\.db"):
        dash.compare_run("baseline", store=tmp_path / "typo.db")
    assert list(tmp_path.iterdir()) == []


def test_prefixed_presets_draw_prefixed_keys_like_the_plain_ones():
    from resnetlab.live import PRESETS

    s = MetricStream()
    dash = Dashboard([PRESETS["loss"].with_prefix("keras/")], stream=s, backend="agg")
    s.log(1, **{"keras/loss": 1.0})
    s.log(2, **{"keras/loss": 0.8, "keras/val_loss": 0.9})
    assert dash.refresh() is True
    train, val = _line(dash, "loss", "keras/loss"), _line(dash, "loss", "keras/val_loss")
    assert val.get_linestyle() == "--" and train.get_linestyle() == "-"
    assert val.get_color() == train.get_color()  # a val line shares its train line's colour
    assert list(val.get_ydata()) == [0.9]


def test_webagg_coalesces_redraws_while_the_server_is_busy():
    dash = Dashboard(["loss"], stream=MetricStream(), backend="webagg")
    dash.show()
    driver = dash.driver
    try:
        release = __import__("threading").Event()
        driver._loop.call_soon(release.wait, 60)  # the server's loop is stuck in a slow job
        for i in range(20):  # a producer keeps asking for redraws meanwhile
            dash.update(i, loss=1.0 / (i + 1))
        release.set()
        driver._loop.call(lambda: None, timeout=60)  # everything queued before ran
        # one redraw, of the newest data, instead of twenty piled up on the loop
        assert driver.renders == 1
        assert driver.render_seconds > 0
        dash.update(20, loss=0.01)  # and redraws are queued again afterwards
        driver._loop.call(lambda: None, timeout=60)
        assert driver.renders == 2
    finally:
        dash.close()
