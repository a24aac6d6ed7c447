"""WebAgg driver: every dashboard figure on one browser page, served by our own tornado
server on our own asyncio loop in a background thread.

The server does not depend on the notebook kernel's loop or on pyplot's global figure
registry, binds 127.0.0.1 by default, and survives browser reloads (each page load opens
fresh websockets to the same figures). When the run ends, :meth:`WebAggDriver.finish`
puts a notice on the page and the server keeps serving the final dashboard until the
process exits or ``stop()``; the page asks ``/status`` every few seconds, so an open tab
shows the notice, and says so when the server is gone. Redraws are handed to the server's loop with
``call_soon_threadsafe``: websockets may only be written from their own loop, and
``draw_idle`` from a producer thread fails with "no current event loop".
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from resnetlab.errors import BackendError, ConfigError
from resnetlab.live.drivers.base import BaseDriver
from resnetlab.runtime.loop import BackgroundLoop

logger = logging.getLogger(__name__)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="_static/css/page.css" type="text/css">
  <link rel="stylesheet" href="_static/css/boilerplate.css" type="text/css">
  <link rel="stylesheet" href="_static/css/fbm.css" type="text/css">
  <link rel="stylesheet" href="_static/css/mpl.css" type="text/css">
  <script src="_static/js/mpl_tornado.js"></script>
  <script src="js/mpl.js"></script>
  <script src="js/frames.js"></script>
  <script>
    function ondownload(figure, format) {
      window.open(figure.id + "/download." + format, "_blank");
    }
    function show(fig_id) {
      var div = document.createElement("div");
      div.className = "resnetlab-figure";
      div.id = "figure-" + fig_id;
      document.getElementById("figures").appendChild(div);
      var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
      var base = window.location.pathname.replace(/\\/[^\\/]*$/, "/");
      var ws = new (mpl.get_websocket_type())(proto + window.location.host + base + fig_id + "/ws");
      var fig = new mpl.figure(fig_id, ws, ondownload, div);
      fig.canvas.setAttribute("tabindex", fig_id);
    }
    function notice(text) {
      var line = document.getElementById("resnetlab-status");
      line.textContent = text;
      line.style.display = text ? "block" : "none";
    }
    // The run's end (and a server that went away) reach an open tab by this poll.
    function poll() {
      // A server whose process is gone or frozen may never answer: give up after 5 s.
      var ctrl = new AbortController();
      setTimeout(function () { ctrl.abort(); }, 5000);
      fetch("status", {cache: "no-store", signal: ctrl.signal})
        .then(function (r) { return r.json(); })
        .then(function (s) {
          notice(s.finished || "");
          setTimeout(poll, s.finished ? 10000 : 2000);
        })
        .catch(function () {
          notice("The dashboard server has stopped (its process ended): " +
                 "this is the last picture it sent.");
        });
    }
    document.addEventListener("DOMContentLoaded", function () {
      {% for fig_id in fig_ids %}show({{ fig_id }});{% end %}
      setTimeout(poll, 2000);
    });
  </script>
</head>
<body>
  <h3 style="font-family: sans-serif; margin: 8px 10px;">{{ title }}</h3>
  <p id="resnetlab-status" style="font-family: sans-serif; margin: 4px 10px; padding: 4px 8px;
     background: #fff3cd; border: 1px solid #e0c36a; display: {{ 'block' if finished else 'none' }};"
  >{{ finished or "" }}</p>
  <div id="mpl-warnings" class="mpl-warnings"></div>
  <div id="figures" style="margin: 10px 10px;"></div>
</body>
</html>
"""


# mpl.js loads every frame into one Image and draws it with the image mode current when
# it has loaded. Frames pushed during training come faster than that: a frame that
# arrives before the previous one has loaded replaces it, and a diff may be drawn as if
# full (clearing the canvas). A page opened or reloaded mid-run then loses its full frame
# under the diffs that follow and shows only the lines that moved, until the next full
# frame. This draws the frames one after another, each in the mode it was sent with; a
# full frame makes the ones still waiting before it moot.
FRAMES_JS = """
(function () {
  var handler = mpl.figure.prototype._make_on_message_function;
  mpl.figure.prototype._make_on_message_function = function (fig) {
    var others = handler(fig);
    var waiting = [];
    var drawing = false;
    function drawNext() {
      if (drawing || !waiting.length) return;
      drawing = true;
      var frame = waiting.shift();
      createImageBitmap(frame.png)
        .then(function (bitmap) {
          if (frame.mode === "full") {
            fig.context.clearRect(0, 0, fig.canvas.width, fig.canvas.height);
          }
          fig.context.drawImage(bitmap, 0, 0);
          bitmap.close();
        })
        .catch(function (err) { console.error("resnetlab: a frame did not decode", err); })
        .then(function () { drawing = false; drawNext(); });
    }
    return function (evt) {
      if (!(evt.data instanceof Blob)) return others(evt);
      if (fig.image_mode === "full") waiting.length = 0;
      waiting.push({png: evt.data, mode: fig.image_mode});
      drawNext();
      fig.updated_canvas_event();
      fig.waiting = false;
    };
  };
})();
"""


def _page_handlers(driver: WebAggDriver) -> list[tuple[str, type]]:
    """The page, its script and icon, and figure downloads."""
    import tornado.template
    import tornado.web
    from matplotlib import get_data_path
    from matplotlib.backends import backend_webagg_core as core

    page = tornado.template.Template(PAGE)

    class Index(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.write(
                page.generate(
                    title=driver.title, fig_ids=sorted(driver.managers), finished=driver.finished
                )
            )

    class Status(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.write({"finished": driver.finished})

    class MplJs(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "application/javascript")
            self.write(core.FigureManagerWebAgg.get_javascript())

    class FramesJs(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "application/javascript")
            self.write(FRAMES_JS)

    class FavIcon(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "image/png")
            self.write(Path(get_data_path(), "images", "matplotlib.png").read_bytes())

    class Download(tornado.web.RequestHandler):
        def get(self, fignum: str, fmt: str) -> None:
            import io
            import mimetypes

            manager = driver.managers.get(int(fignum))
            if manager is None or fmt not in ("png", "svg", "pdf"):
                raise tornado.web.HTTPError(404)
            buf = io.BytesIO()
            with driver.dashboard.lock:
                manager.canvas.figure.savefig(buf, format=fmt)
            self.set_header("Content-Type", mimetypes.types_map.get("." + fmt, "binary"))
            self.write(buf.getvalue())

    return [
        (r"/js/mpl\.js", MplJs),
        (r"/js/frames\.js", FramesJs),
        (r"/favicon\.ico", FavIcon),
        (r"/([0-9]+)/download\.([a-z0-9]+)", Download),
        (r"/status", Status),
        (r"/?", Index),
    ]


def _closed_meanwhile(sent: Any) -> None:
    """Collect a write's outcome: a page that closed while it was under way is no error."""
    if not sent.cancelled():
        sent.exception()


def _socket_handler(driver: WebAggDriver) -> type:
    """The websocket of one figure: matplotlib's protocol, images as binary frames."""
    import tornado.websocket

    class WebSocket(tornado.websocket.WebSocketHandler):
        supports_binary = True

        def open(self, fignum: str) -> None:
            self.manager = driver.managers.get(int(fignum))
            if self.manager is None:
                self.close()
                return
            self.manager.add_web_socket(self)
            self.set_nodelay(True)

        def on_close(self) -> None:
            manager = getattr(self, "manager", None)  # unset when open() never ran
            if manager is not None:
                manager.web_sockets.discard(self)

        def on_message(self, message: str | bytes) -> None:
            msg = json.loads(message)
            if msg.get("type") == "supports_binary":
                self.supports_binary = msg["value"]
            elif self.manager is not None:
                self.manager.handle_json(msg)

        def send_json(self, content: Any) -> None:
            self._send(json.dumps(content))

        def send_binary(self, blob: bytes) -> None:
            if self.supports_binary:
                self._send(blob, binary=True)
            else:
                import base64

                self._send("data:image/png;base64," + base64.b64encode(blob).decode())

        def _send(self, message: str | bytes, binary: bool = False) -> None:
            # A page that went away (reload, closed tab) is dropped by on_close; until
            # then a write to it must not raise: matplotlib sends each frame to every
            # socket in turn, and the pages after it would miss the frame.
            try:
                sent = self.write_message(message, binary=binary)
            except tornado.websocket.WebSocketClosedError:
                return
            sent.add_done_callback(_closed_meanwhile)

    return WebSocket


def _make_app(driver: WebAggDriver) -> Any:
    import tornado.web
    from matplotlib import get_data_path
    from matplotlib.backends import backend_webagg_core as core

    static = core.FigureManagerWebAgg.get_static_file_path()
    images = str(Path(get_data_path(), "images"))
    return tornado.web.Application(
        [
            (r"/_static/(.*)", tornado.web.StaticFileHandler, {"path": static}),
            (r"/_images/(.*)", tornado.web.StaticFileHandler, {"path": images}),
            (r"/([0-9]+)/ws", _socket_handler(driver)),
            *_page_handlers(driver),  # ends with the catch-all index page
        ]
    )


class WebAggDriver(BaseDriver):
    name = "webagg"
    # The page outlives the run: finish() leaves the server up (until stop() or exit).
    keeps_final = True
    options = {
        # 127.0.0.1: only this machine can see the page. Use an SSH tunnel to watch from
        # elsewhere; "0.0.0.0" exposes training metrics to the whole network.
        "address": "127.0.0.1",
        # 0 picks a free port; a fixed port that is taken is a clear error.
        "port": 0,
        # Page title; default: the dashboard's title, else "resnetlab dashboard".
        "title": None,
    }

    def __init__(self, dashboard: Any, **options: Any) -> None:
        super().__init__(dashboard, **options)
        self.address = str(self.config["address"])
        try:
            self.port = int(self.config["port"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"the webagg live backend's port must be a number (0 picks a free "
                f"one), got {self.config['port']!r}"
            ) from None
        if not 0 <= self.port <= 65535:
            raise ConfigError(
                f"the webagg live backend's port must be in 0..65535 (0 picks a "
                f"free one), got {self.port}"
            )
        self.title = str(self.config["title"] or dashboard.title or "resnetlab dashboard")
        self.managers: dict[int, Any] = {}
        self._loop = BackgroundLoop("resnetlab-webagg")
        self._server: Any = None
        self._socket: socket.socket | None = None
        # At most one redraw queued on the server's loop: draws asked for meanwhile are
        # covered by it (it renders the newest data), so slow renders never pile up.
        self._draw_lock = threading.Lock()
        self._queued = False
        self.renders = 0
        # The notice the page shows once the run has ended (None while it runs).
        self.finished: str | None = None
        # render_seconds (BaseDriver): time spent rendering on the server's loop, which the
        # dashboard's draw budget counts.

    def start(self) -> None:
        if self.started:
            return
        from matplotlib.backends.backend_webagg_core import (
            FigureCanvasWebAggCore,
            FigureManagerWebAgg,
        )

        sock = self._bind()
        canvases = self.attach(FigureCanvasWebAggCore)
        for num, canvas in enumerate(canvases, start=1):
            self.managers[num] = FigureManagerWebAgg(canvas, num)
        if self._loop.closed:  # a loop runs once: a restarted driver gets a new one
            self._loop = BackgroundLoop("resnetlab-webagg")
        self._loop.start()
        try:
            self._loop.call(self._serve, sock, timeout=10.0)
        except Exception:
            sock.close()
            self._loop.stop(hard=True, raise_errors=False)
            raise
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        self.url = f"http://{host}:{self.port}/"
        logger.info("dashboard served at %s", self.url)
        super().start()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise BackendError(
                    f"WebAgg dashboard: port {self.port} on {self.address} is already in use; "
                    f"pass port=0 to pick a free port, or stop what is listening there"
                ) from exc
            raise BackendError(
                f"WebAgg dashboard: cannot listen on {self.address}:{self.port}: {exc}"
            ) from exc
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._socket = sock
        return sock

    def _serve(self, sock: socket.socket) -> None:
        import tornado.httpserver

        self._server = tornado.httpserver.HTTPServer(_make_app(self))
        self._server.add_sockets([sock])

    def draw(self) -> None:
        """Hand a redraw to the server's loop (returns at once; safe from any thread).

        If one is already queued, nothing more is queued: that one will draw the newest data.
        """
        if not self.started:
            return
        with self._draw_lock:
            if self._queued and self._loop.running:
                return
            self._queued = True
        self._loop.call_soon(self._draw_on_loop)

    def _draw_on_loop(self) -> None:
        with self._draw_lock:
            self._queued = False  # data that moves from now on needs another draw
        began = time.thread_time()  # CPU time, as the draw loop counts its own
        try:
            with self.dashboard.lock:
                for manager in self.managers.values():
                    # draw() renders and pushes the (diff) image to every open websocket.
                    manager.canvas.draw()
        finally:
            self.renders += 1
            self.render_seconds += time.thread_time() - began

    def finish(self, message: str) -> None:
        """Show ``message`` on the page (open tabs within seconds, reloads at once) and
        push the final picture; the server stays up."""
        self.finished = message
        self.draw()

    def stop(self) -> None:
        if not self.started:
            return
        super().stop()

        async def _close() -> None:
            for manager in self.managers.values():
                for ws in list(manager.web_sockets):
                    ws.close()
            if self._server is not None:
                self._server.stop()
                # Idle keep-alive connections too: a tab's next request must fail at once
                # (and say the server has stopped), not wait on a loop that no longer runs.
                await self._server.close_all_connections()

        try:
            self._loop.submit(_close()).result(5.0)
        except Exception:
            logger.exception("closing the WebAgg server failed")
        self._loop.stop(hard=True, raise_errors=False)  # no tasks of ours; errors were logged
        if self._socket is not None:
            self._socket.close()
            self._socket = None
