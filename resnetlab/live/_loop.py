"""A private asyncio loop in a daemon thread, for the monitor, the WebAgg server and the
dashboard's refresh task.

It follows the shape of ``resnetlab.jobs.BackgroundLoop`` (start with a handshake,
submit coroutines, call functions on the loop, idempotent stop that joins) and is kept
small so that it can be swapped for the job registry's loop without touching callers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """One asyncio event loop running in one named daemon thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LoopThread:
        """Start the thread; returns once the loop runs (idempotent)."""
        with self._lock:
            if self.running:
                return self
            self._ready.clear()
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
            self._thread.start()
        self._ready.wait()
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; the returned future carries its result/exception."""
        if self.loop is None or not self.running:
            coro.close()
            raise RuntimeError(f"loop thread {self.name!r} is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 10.0) -> T:
        """Run ``fn(*args)`` on the loop thread and return its result (raises its error)."""
        if self.on_loop_thread():
            return fn(*args)

        async def _call() -> T:
            return fn(*args)

        return self.submit(_call()).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Hand ``fn(*args)`` to the loop without waiting (thread-safe)."""
        if self.loop is not None and self.running:
            self.loop.call_soon_threadsafe(fn, *args)

    def on_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel pending tasks, stop the loop and join the thread (idempotent)."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            if self.loop is not None and thread.is_alive():
                self.loop.call_soon_threadsafe(self.loop.stop)
            if thread is not threading.current_thread():
                thread.join(timeout)
            self._thread = None
