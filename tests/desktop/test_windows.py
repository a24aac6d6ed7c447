"""Dashboard windows in Qt, Tk and GTK3 under Xvfb: live redraws and a responsive loop.

Each toolkit runs ``window_check.py`` in its own process (see that file for the phases).
"""

from __future__ import annotations

import pytest
from desktop_helpers import changed_fraction, colours

# Generous bounds: the machine is shared and loaded; a frozen loop misses them by seconds.
RESPONSE_BOUND_S = 2.0

CANVAS = {"qt": "FigureCanvasQTAgg", "tk": "FigureCanvasTkAgg", "gtk": "FigureCanvasGTK3Agg"}


@pytest.mark.parametrize("kit", ["qt", "tk", "gtk"])
def test_window_follows_the_stream_and_stays_responsive(kit, run_gui, tmp_path):
    r = run_gui("window_check.py", kit, str(tmp_path))
    g = r["grabs"]
    assert CANVAS[kit] in r["canvas"], r["canvas"]
    assert r["title"] == f"{kit} check"
    # A real dashboard is on screen (axes, text, lines), not a blank window.
    assert colours(g["A"]) > 20
    # While the producer appends, the window's own pixels change...
    assert r["records_at_B"] > r["records_at_A"]
    assert changed_fraction(g["A"], g["B"]) > 0.01
    # ...and once it stops, they stay put: the changes came from the data.
    assert changed_fraction(g["C"], g["D"]) == 0.0
    # A training loop on the main thread that calls pump() keeps the window live.
    assert r["batches"] > 2
    assert changed_fraction(g["D"], g["E"]) > 0.01
    # The event loop answered every posted event, each within the bound, in both the
    # waiting and the pumping phase; the main-thread heartbeat timer never stalled.
    assert r["posted_while_waiting"] >= 3
    assert len(r["latencies_s"]) > r["posted_while_waiting"]
    assert max(r["latencies_s"]) < RESPONSE_BOUND_S, r["latencies_s"]
    assert r["beats"] > 20 and r["max_gap_s"] < RESPONSE_BOUND_S
    assert r["open_after_close"] is False
