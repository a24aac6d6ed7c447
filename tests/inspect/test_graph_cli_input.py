"""``resnetlab inspect graph PRESET`` builds the preset for the input ``resnetlab summary``
and ``resnetlab models`` show: the preset's own."""

from __future__ import annotations

from resnetlab.cli import main


def test_graph_and_summary_agree_on_the_presets_input(tmp_path, capsys):
    assert main(["summary", "resnetv2-20"]) == 0
    assert "input (C, H, W) = (3, 32, 32)" in capsys.readouterr().out
    # Was (1, 28, 28): inspect's Fashion-MNIST default, not the preset's.
    assert main(["inspect", "graph", "resnetv2-20", "-o", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnetv2-20  input (3, 32, 32) -> output (10)")
    assert main(["inspect", "graph", "resnetv2-micro", "-o", str(tmp_path / "m.png")]) == 0
    assert capsys.readouterr().out.startswith("resnetv2-micro  input (1, 28, 28)")
    # Flags still choose, and -O is --set, as in `resnetlab train`.
    args = ["inspect", "graph", "resnetv2-20", "--in-channels", "1", "--image-size", "28"]
    assert main([*args, "-O", "stack_shortcut=true", "-o", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnetv2-20  input (1, 28, 28)") and "stack shortcut" in out
