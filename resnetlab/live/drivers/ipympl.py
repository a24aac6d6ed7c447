"""ipympl driver: the dashboard's figures as Jupyter widgets, redrawn from any thread.

Each figure gets an ipympl ``Canvas`` widget displayed once in the cell that showed the
dashboard; later updates replace the widget's image and never clear the cell's other
output. ``draw()`` calls ``canvas.draw()``, which renders and pushes the image over the
comm at once (ipympl's ``draw_idle`` only asks the browser to ask back, which needs the
kernel to be idle). This keeps the plot moving while another cell blocks the kernel's
main thread; rendering holds ``dashboard.lock``. The images are PNGs at zlib level 1 (a third of the
default's encoding time; the frames are pushed twice a second and thrown away), and
mostly diffs (:mod:`~resnetlab.live.png_frames`), also those a render process makes.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

from resnetlab.errors import BackendError
from resnetlab.live.drivers.base import BaseDriver
from resnetlab.live.png_frames import ImageMode, as_pixels, diff_pixels, encode_png

# What became of a frame rendered elsewhere (:meth:`IpymplDriver.show_frame`).
FrameOutcome = Literal["shown", "unfit", "needs full"]


def diff_png(canvas: Any) -> bytes | None:
    """matplotlib's ``FigureCanvasWebAggCore.get_diff_image`` (3.8-3.11), encoding at
    zlib level 1: the changed pixels over the last image, or the full image when that
    cannot be overlaid (first image, new size, transparency). The page now holds the
    kernel's own picture, not the last forwarded frame."""
    if not canvas._png_is_old:
        return None
    pixels = as_pixels(np.asarray(canvas.get_renderer().buffer_rgba()))
    mode, image = diff_pixels(pixels, None if canvas._force_full else canvas._last_buff)
    canvas.set_image_mode(mode)
    canvas._last_buff = pixels.copy()
    canvas._force_full = False
    canvas._png_is_old = False
    canvas.holds_forwarded_frame = False
    return encode_png(image)


def _handle_message(canvas: Any, obj: Any, content: dict[str, Any], buffers: Any) -> None:
    """ipympl's handler; a page that (re)connects holds no forwarded frame."""
    if content.get("type") in ("initialized", "refresh"):
        canvas.holds_forwarded_frame = False
    canvas._base_handle_message(obj, content, buffers)


@functools.cache
def fast_png_canvas(base: type) -> type:
    """A subclass of ipympl's ``Canvas`` whose pushed images encode faster (:func:`diff_png`)
    and that knows whether the page shows the last frame forwarded to it (a diff frame can
    be painted over only that)."""
    return type(
        f"FastPng{base.__name__}",
        (base,),
        {
            "get_diff_image": diff_png,
            "holds_forwarded_frame": False,
            "_base_handle_message": base._handle_message,
            "_handle_message": _handle_message,
        },
    )


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
        self.canvases = self.attach(fast_png_canvas(Canvas))
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

    def pixel_ratio(self, index: int) -> float:
        """Device pixels per CSS pixel of the page showing figure ``index`` (2 on HiDPI)."""
        return float(self.canvases[index].device_pixel_ratio)

    def show_frame(
        self, index: int, png: bytes, size: tuple[int, int], mode: ImageMode = "full"
    ) -> FrameOutcome:
        """Push a PNG rendered elsewhere (a render process) to figure ``index``'s widget.
        ``"shown"``; ``"unfit"`` (nothing sent) when the page is not ready for images yet or
        shows the figure at another size (a HiDPI page: the kernel renders then);
        ``"needs full"`` (nothing sent) for a diff the page cannot paint over."""
        canvas = self.canvases[index]
        if canvas.syncing_data_url or tuple(canvas.get_width_height(physical=True)) != size:
            return "unfit"
        if mode == "diff" and not canvas.holds_forwarded_frame:
            return "needs full"
        with self.dashboard.lock:
            canvas.set_image_mode(mode)
            canvas._force_full = True  # the kernel's own next image must be whole too
            canvas.send({"data": '{"type": "binary"}'}, buffers=[png])
            canvas.holds_forwarded_frame = True
        return "shown"
