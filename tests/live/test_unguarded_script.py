"""A script that trains with a live dashboard needs no ``if __name__ == "__main__":`` guard.

The render process (Agg snapshots, the WebAgg page) used to be a ``multiprocessing`` spawn,
which re-imports the user's ``__main__``: the script trained a second time in the child
and died there with multiprocessing's "bootstrapping" error. Now the child is a fresh
interpreter (``python -m resnetlab.live.render_process``) that never runs the script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from resnetlab.store import RunStore

SCRIPT = """
import resnetlab

result = resnetlab.train(
    "resnetv2-micro",
    data="fashion-mnist",
    data_dir={data!r},
    epochs=1,
    batch_size=64,
    train_limit=768,
    test_limit=128,
    val_size=256,
    device="cpu",
    store={store!r},
    live={live!r},
)
print("trained run", result.run_id, result.status)
"""


@pytest.mark.timeout(400)
@pytest.mark.parametrize("live", ["auto", "webagg"])
def test_a_script_without_a_main_guard_trains_once(live, fashion_mnist_dir, tmp_path):
    store = tmp_path / "runs.db"
    script = tmp_path / "first.py"
    script.write_text(
        textwrap.dedent(SCRIPT.format(data=str(fashion_mnist_dir), store=str(store), live=live))
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=360,
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "bootstrapping" not in output, output[-4000:]
    assert output.count("trained run") == 1, output[-4000:]
    with RunStore(store) as runs:
        stored = runs.list_runs()
    assert len(stored) == 1, [(r.id, r.name, r.status) for r in stored]
    assert stored[0].status == "completed"
    final = next(tmp_path.rglob("dashboard-final.png"), None)
    assert final is not None, sorted(str(p) for p in tmp_path.rglob("*.png"))
