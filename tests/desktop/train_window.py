"""Train a tiny model with ``live=KIT`` on the main thread; count the window's redraws.

    python tests/desktop/train_window.py tk OUTDIR

Training runs on the main thread, as in ``resnetlab train --live tk``; the window is only
refreshed because the live session's callback pumps the toolkit's events at batch ends.
Prints one JSON line: the dashboard's draw count at each epoch end and the run's status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    kit, out = sys.argv[1], Path(sys.argv[2])
    from resnetlab.live.drivers.toolkits import toolkit_problem

    problem = toolkit_problem(kit)
    if problem:  # no Tk (or no display) here: the test skips with this reason
        print(json.dumps({"skip": problem}))
        return
    import torch

    torch.set_num_threads(1)
    import resnetlab

    draws_per_epoch: list[int] = []
    grab = out / "end-of-training.png"

    class CountDraws:
        # Reads the dashboard's draw counter only: grabbing here would process the
        # toolkit's events itself and hide a window that training starves.
        def on_epoch_end(self, trainer, logs):
            draws_per_epoch.append(trainer.live.dashboard.driver.draws)

        def on_fit_end(self, trainer, logs):
            trainer.live.dashboard.driver.grab(grab)

    result = resnetlab.train(
        "resnetv2-micro",
        data="fashion-mnist",
        epochs=3,
        batch_size=64,
        train_limit=7936,  # training images, after the 256 validation ones
        test_limit=256,
        val_size=256,
        live=kit,
        store=out / "runs.db",
        callbacks=[CountDraws()],
    )
    print(
        json.dumps(
            {
                "draws_per_epoch": draws_per_epoch,
                "grab": str(grab),
                "status": result.status,
                "backend": result.dashboard.backend if result.dashboard else None,
                "final_png": str(result.run_dir / "dashboard-final.png"),
            }
        )
    )


if __name__ == "__main__":
    main()
