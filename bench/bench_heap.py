"""Training time with the kept heap (``resnetlab.training.heap``) vs glibc's defaults.

    .venv/bin/python bench/bench_heap.py                          # 3 rounds, 20,480 images
    .venv/bin/python bench/bench_heap.py --rounds 5 --images 40960 --epochs 2

Each side is a fresh Python process that runs ``resnetlab.train()`` with the default
recipe on the first ``--images`` training images (no store, no dashboard): the peer with
``RESNETLAB_HEAP=default`` (glibc's own mmap and trim thresholds), ours with the default
``keep``. The sides alternate, the child reports its training wall time and minor page
faults, and the script prints every round, the medians and the ratio peer / ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, resource, sys, time
import resnetlab
images, epochs = int(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
resnetlab.train(epochs=epochs, train_limit=images, test_limit=1000, store=None, live=None,
                progress=False, verbose=False)
print(json.dumps({"wall_s": time.perf_counter() - t0,
                  "minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def run_side(mode: str, images: int, epochs: int) -> dict[str, float]:
    env = dict(os.environ, RESNETLAB_HEAP=mode)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(images), str(epochs)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=20480)
    ap.add_argument("--epochs", type=int, default=1)
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    rows: dict[str, list[dict[str, float]]] = {"default": [], "keep": []}
    for r in range(a.rounds):
        for mode in ("default", "keep") if r % 2 == 0 else ("keep", "default"):
            row = run_side(mode, a.images, a.epochs)
            rows[mode].append(row)
            print(f"round {r + 1} {mode:>7}: {row['wall_s']:6.2f} s  {row['minflt']:>9,} faults")
    med = {m: statistics.median(x["wall_s"] for x in rows[m]) for m in rows}
    flt = {m: statistics.median(x["minflt"] for x in rows[m]) for m in rows}
    print(f"median glibc default: {med['default']:.2f} s, {flt['default']:,.0f} faults")
    print(f"median kept heap:     {med['keep']:.2f} s, {flt['keep']:,.0f} faults")
    print(
        f"ratio default / keep: {med['default'] / med['keep']:.3f} (above 1: the kept heap is faster)"
    )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
