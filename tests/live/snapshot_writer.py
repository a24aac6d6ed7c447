"""Child process for the SIGKILL test: write Agg snapshots as fast as possible, forever."""

import sys

from resnetlab.live import Dashboard, MetricStream

stream = MetricStream()
dash = Dashboard(
    [["loss", "accuracy"], ["lr"]],
    stream=stream,
    backend="agg",
    directory=sys.argv[1],
    interval=0.0,
)
step = 0
while True:
    stream.log(step, loss=1.0 / (step + 1), accuracy=step % 100 / 100, lr=0.1)
    step += 1
    if dash.refresh():
        dash.draw()  # interval=0: every draw writes both snapshot files
        print("wrote", step, flush=True)
