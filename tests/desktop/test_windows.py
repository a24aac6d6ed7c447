"""Dashboard windows in Qt, Tk and GTK3 under Xvfb: live, locked, blitted redraws and a
responsive loop.

Each toolkit runs ``window_check.py`` in its own process (see that file for the phases).
"""

from __future__ import annotations

import pytest
from desktop_helpers import changed_fraction, colours

# Only a frozen loop misses this bound (the phases themselves end on conditions).
RESPONSE_BOUND_S = 20.0

CANVAS = {"qt": "FigureCanvasQTAgg", "tk": "FigureCanvasTkAgg", "gtk": "FigureCanvasGTK3Agg"}


@pytest.mark.parametrize("kit", ["qt", "tk", "gtk"])
def test_window_follows_the_stream_and_stays_responsive(kit, run_gui, tmp_path):
    r = run_gui("window_check.py", kit, str(tmp_path), timeout=300)
    g = r["grabs"]
    assert CANVAS[kit] in r["canvas"], r["canvas"]
    assert r["title"] == f"{kit} check"
    # A real dashboard is on screen (axes, text, lines), not a blank window.
    assert colours(g["A"]) > 20
    # While the producer appends, the window's own pixels change...
    assert r["records_at_B"] > r["records_at_A"]
    assert changed_fraction(g["A"], g["B"]) > 0.01
    # ...and once it stops, the refresh timer keeps running but draws nothing and the
    # pixels stay put: the changes came from the data.
    assert r["draws_c_to_d"] == 0
    assert changed_fraction(g["C"], g["D"]) == 0.0
    # A training loop on the main thread that calls pump() keeps the window live: the
    # timer fired, the window redrew, a posted event was handled, all during the loop.
    t = r["training"]
    assert r["batches"] > 2
    assert t["beats"] >= 5 and t["draws"] >= 2 and t["handled"] >= 1, t
    assert changed_fraction(g["D"], g["E"]) > 0.01
    # A loop that only appends to the stream on the main thread (no pump() call, no
    # trainer callback): the driver's stream listener keeps the window just as live.
    f = r["listening"]
    assert f["appends"] > 2
    assert f["beats"] >= 5 and f["draws"] >= 2 and f["handled"] >= 1, f
    assert changed_fraction(g["E"], g["F"]) > 0.01
    # The event loop answered the events posted while it waited (all but one in flight),
    # and the main-thread heartbeat timer kept firing.
    assert r["handled_while_waiting"] >= 3
    assert r["handled_while_waiting"] >= r["posted_while_waiting"] - 1
    assert r["beats_while_waiting"] > 20
    assert max(r["latencies_s"]) < RESPONSE_BOUND_S, r["latencies_s"]
    assert r["max_gap_s"] < RESPONSE_BOUND_S
    # Every render of the window's figure held the dashboard's lock (so it saw no
    # half-moved artists), and the figure blitted: only the lines were redrawn.
    assert r["renders"] >= 5 and r["renders_without_lock"] == 0, r
    assert r["blit_draws"] >= 2, r
    assert r["open_after_close"] is False
