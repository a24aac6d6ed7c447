"""ipympl driver: the dashboard's figures as Jupyter widgets, redrawn from any thread.

Each figure gets an ipympl ``Canvas`` widget displayed once in the cell that showed the
dashboard; later updates replace the widget's image and never clear the cell's other
output. ``draw()`` calls ``canvas.draw()``, which renders and pushes the image over the
comm at once (ipympl's ``draw_idle`` only asks the browser to ask back, which needs the
kernel to be idle). This keeps the plot moving while another cell blocks the kernel's
main thread; rendering holds ``dashboard.lock``.
"""

from __future__ import annotations

from typing import Any

from resnetlab.errors import BackendError
from resnetlab.live.drivers.base import BaseDriver


class IpymplDriver(BaseDriver):
    name = "ipympl"
    options = {
        # matplotlib's pan/zoom toolbar: "fade-in-fade-out" (shown on hover), True, False.
        "toolbar": "fade-in-fade-out",
        # Show the "Figure 1" header line above each figure.
        "header": False,
        # Display the widgets on start(); False lets you place dash.canvases yourself.
        "display": True,
    }

    def __init__(self, dashboard: Any, **options: Any) -> None:
        super().__init__(dashboard, **options)
        self.canvases: list[Any] = []

    def start(self) -> None:
        if self.started:
            return
        try:
            from ipympl.backend_nbagg import Canvas, FigureManager
        except ImportError as exc:
            raise BackendError(
                f"the 'ipympl' live backend needs ipympl ({exc}); pip install ipympl, "
                f"or use backend='webagg' / 'agg'"
            ) from exc
        self.canvases = self.attach(Canvas)
        for num, canvas in enumerate(self.canvases, start=1):
            FigureManager(canvas, num)  # sets canvas.manager, needed for image pushes
            canvas.header_visible = bool(self.config["header"])
            toolbar = self.config["toolbar"]
            canvas.toolbar_visible = toolbar if isinstance(toolbar, str) else bool(toolbar)
            canvas.resizable = False
        if self.config["display"]:
            from IPython.display import display

            for canvas in self.canvases:
                display(canvas)
        super().start()
        self.draw()

    def draw(self) -> None:
        with self.dashboard.lock:
            for canvas in self.canvases:
                canvas.draw()
