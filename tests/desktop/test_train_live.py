"""`resnetlab.train(live="tk")` in a script: the window follows training on the main thread."""

from __future__ import annotations

from pathlib import Path

from desktop_helpers import colours
from live.image_checks import assert_whole_image


def test_training_on_the_main_thread_keeps_the_tk_window_live(run_gui, fashion_mnist_dir, tmp_path):
    report = run_gui("train_window.py", "tk", str(tmp_path), timeout=240)
    assert report["status"] == "completed"
    assert report["backend"] == "tk"
    draws = report["draws_per_epoch"]
    assert len(draws) == 3, draws
    # The window kept redrawing while training held the main thread (two epochs last
    # longer than the 0.5 s refresh interval; without the driver's stream listener, which
    # pumps the toolkit from the trainer's appends, the count stays at its start-up value).
    assert draws[0] < draws[-1], draws
    assert colours(report["grab"]) > 20, "the window shows no plot"
    assert Path(report["final_png"]).stat().st_size > 0
    assert_whole_image(report["final_png"])  # opaque, with titles and tick labels
