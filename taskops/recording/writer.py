"""A background writer: a daemon thread that drains a bounded queue in batches.

The recorder hands it what the publisher would otherwise write at the call
(see :mod:`taskops.recording.background`). Nothing here knows about the database: the
owner passes the function that writes a batch and the one to call when the
thread stops (closing its connection).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Put in the queue by :meth:`Writer.stop`: everything before it is written first.
_STOP = object()


class Writer(Generic[T]):
    """One thread, one bounded queue; ``offer`` never blocks, ``flush`` waits for what was offered."""

    def __init__(
        self,
        write_batch: Callable[[list[T]], None],
        *,
        name: str,
        maxsize: int,
        batch_size: int,
        linger: float = 0.0,
        on_stop: Callable[[], None],
    ) -> None:
        #: The process that started it: a forked child must start its own.
        self.pid = os.getpid()
        self._write_batch = write_batch
        self._on_stop = on_stop
        self._batch_size = batch_size
        # Seconds a batch waits for more items once the first is taken: under
        # a steady trickle, one statement per few items instead of one each.
        # The writer sleeps through it (offer() does not wake it per item: each
        # wake-up would take the GIL from the publishing thread); flush(), stop()
        # and a full batch end it early.
        self._linger = linger
        self._hurry = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        # Guards the two counters; flush() waits on it for the writer to catch up.
        self._progress = threading.Condition()
        self._accepted = 0
        self._settled = 0
        self._stopping = False
        self._open = threading.Event()
        self._open.set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def offer(self, item: T) -> bool:
        """Queue ``item``; False when the queue is full or the writer is stopping (the caller writes it)."""
        with self._progress:
            if not self.is_running():
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                return False
            self._accepted += 1
        if self._queue.qsize() >= self._batch_size:
            self._hurry.set()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything offered so far is written (or failed and was logged)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            target = self._accepted
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._hurry.set()  # again after each batch: what is left goes out without lingering
                self._progress.wait(left)
        return True

    def stop(self, timeout: float) -> bool:
        """Write what is queued, then end the thread; True if it ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._progress:
            if self._stopping:
                return not self._thread.is_alive()
            self._stopping = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        self._hurry.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold batches back inside the block (tests use it to let another writer go first).

        A batch being written when the block starts is finished; nothing else
        is written until the block ends.
        """
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def _take(self) -> tuple[list[T], bool]:
        """Wait for one item, then gather more for up to ``linger`` seconds, up to a batch; True at the stop mark."""
        items: list[T] = []
        item = self._queue.get()
        # Held here while paused, so that what is queued meanwhile goes out in one batch.
        self._open.wait()
        if self._linger > 0:
            self._hurry.wait(self._linger)
        self._hurry.clear()
        while item is not _STOP:
            items.append(item)  # type: ignore[arg-type]  # only offer() puts anything but _STOP
            if len(items) >= self._batch_size:
                return items, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items, False
        return items, True

    def _run(self) -> None:
        try:
            stop = False
            while not stop:
                items, stop = self._take()
                if not items:
                    continue
                try:
                    self._write_batch(items)
                except Exception:  # write_batch logs its own errors; the thread must outlive any
                    logger.exception("taskops: the background writer failed on a batch of %d", len(items))
                finally:
                    with self._progress:
                        self._settled += len(items)
                        self._progress.notify_all()
        finally:
            with self._progress:
                self._stopping = True
                self._progress.notify_all()
            self._on_stop()
