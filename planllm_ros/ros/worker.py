"""A single worker thread with a latest-only slot.

Planning takes far longer than a camera frame period. Queueing requests would make every plan
older than the last; dropping all but the newest keeps the node current and its memory flat.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlotWorker(Generic[T]):
    """Runs `handle(item)` on its own thread for the newest submitted item; an item still
    waiting when a newer one arrives is replaced (and counted in `replaced`)."""

    def __init__(self, handle: Callable[[T], None], name: str) -> None:
        self._handle = handle
        self._cond = threading.Condition()
        self._pending: T | None = None
        self._busy = False
        self._stopping = False
        self.replaced = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue `item`; True when it replaced an item that had not started yet."""
        with self._cond:
            replaced = self._pending is not None
            self.replaced += replaced
            self._pending = item
            self._cond.notify_all()
        return replaced

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    @property
    def depth(self) -> int:
        """Items waiting (0 or 1: the slot never grows)."""
        with self._cond:
            return int(self._pending is not None)

    def stop(self, timeout: float | None = None) -> None:
        """Drop what is waiting, let the running item finish, and end the thread."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                item, self._pending = self._pending, None
                self._busy = True
            try:
                self._handle(item)
            finally:
                with self._cond:
                    self._busy = False
