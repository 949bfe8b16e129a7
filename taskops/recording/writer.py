"""A background writer: a daemon thread that drains a bounded queue in batches.

The recorder hands it what the publisher would otherwise write at the call
(see :mod:`taskops.recording.background`). Nothing here knows about the
database: the owner passes the function that writes a batch, the one that
tells an outage from a bad item, and the one to call when the thread stops
(closing its connection).

During an outage nothing is lost and nothing grows without bound: the batch
being written is kept and tried again with a growing pause, the queue holds
at most ``max_items`` items and ``max_bytes`` bytes, and an offer past that
waits at most its ``wait`` and is then refused (the owner counts it). The log
says it once per outage, then once per ``summary_interval``, never once per item.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

logger = logging.getLogger("taskops.recording")

T = TypeVar("T")

#: Seconds before the first retry of a batch in an outage; each retry doubles it up to :data:`MAX_BACKOFF`.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: Seconds between two log lines while an outage lasts.
SUMMARY_INTERVAL = 60.0


class Overflow(Protocol[T]):
    """Where items go when the queue is full (:class:`~taskops.recording.spool.Spool`)."""

    def __len__(self) -> int: ...
    def put(self, item: T) -> bool: ...
    def take(self, limit: int) -> list[T]: ...


class Writer(Generic[T]):
    """One thread, one bounded queue; ``offer`` waits at most its ``wait``, ``flush`` tells whether all was written."""

    def __init__(
        self,
        write_batch: Callable[[list[T]], int],
        *,
        name: str,
        maxsize: int,
        batch_size: int,
        linger: float = 0.0,
        on_stop: Callable[[], None],
        max_bytes: int | None = None,
        size_of: Callable[[T], int] = lambda item: 0,
        is_outage: Callable[[BaseException], bool] = lambda exc: False,
        overflow: Overflow[T] | None = None,
    ) -> None:
        #: The process that started it: a forked child must start its own.
        self.pid = os.getpid()
        self.name = name
        # write_batch returns how many items it could not write (logged and
        # counted by it); an exception is_outage() accepts keeps the batch for a retry.
        self._write_batch = write_batch
        self._on_stop = on_stop
        self._is_outage = is_outage
        self._size_of = size_of
        self._batch_size = batch_size
        self._max_items = maxsize
        self._max_bytes = max_bytes
        # Seconds a batch waits for more items once the first is taken: under
        # a steady trickle, one statement per few items instead of one each.
        # The writer sleeps through it (offer() does not wake it per item: each
        # wake-up would take the GIL from the publishing thread); flush(), stop()
        # and a full batch end it early.
        self._linger = linger
        self._hurry = threading.Event()
        # One lock for the queue and the counters; the conditions wake the
        # writer (an item came), offers waiting for room, and flush().
        self._lock = threading.Lock()
        self._items_ready = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._queue: collections.deque[tuple[T, int]] = collections.deque()
        # Past the queue's bounds, items wait here (a file), and are read back once the queue has room.
        self._overflow = overflow
        self._queued_bytes = 0
        self._stop_requested = False
        # Items an overflow adopted from a process that died count as offered here.
        self._accepted = len(overflow) if overflow is not None else 0
        self._settled = 0
        #: Items refused (queue full) and items that failed to write, since the start.
        self.refused = 0
        self.failed = 0
        self._lost_reported = 0
        self._stopping = False
        self._open = threading.Event()
        self._open.set()
        self._outage_since: float | None = None
        self._next_refused_log = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def backlog(self) -> int:
        """Items offered and not yet written (or given up)."""
        with self._lock:
            return self._accepted - self._settled

    def in_outage(self) -> bool:
        """Whether the last write failed for an outage and the writer is waiting to try again."""
        return self._outage_since is not None

    def offer(self, item: T, wait: float = 0.0) -> bool:
        """Queue ``item`` (past the bounds: in the overflow, else waiting up to ``wait`` seconds for room).

        False when refused (counted in ``refused``).
        """
        size = self._size_of(item)
        deadline = time.monotonic() + wait
        with self._lock:
            overflow = self._overflow
            if self.is_running() and not self._has_room(size) and overflow is not None and overflow.put(item):
                # A local file: no wait.
                self._accepted += 1
                self._items_ready.notify()
                return True
            while not self._has_room(size) and self.is_running():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._hurry.set()
                self._room.wait(left)
            if not self.is_running() or not self._has_room(size):
                self.refused += 1
                refused, queued, queued_bytes = self.refused, len(self._queue), self._queued_bytes
            else:
                self._queue.append((item, size))
                self._queued_bytes += size
                self._accepted += 1
                self._items_ready.notify()
                if len(self._queue) >= self._batch_size:
                    self._hurry.set()
                return True
        self._log_refused(refused, queued, queued_bytes)
        return False

    def _log_refused(self, refused: int, queued: int, queued_bytes: int) -> None:
        now = time.monotonic()
        if refused > 1 and now < self._next_refused_log:
            return
        self._next_refused_log = now + SUMMARY_INTERVAL
        logger.error(
            "taskops: %s is full (%d records, %d bytes waiting) or stopped: %d records dropped so far",
            self.name,
            queued,
            queued_bytes,
            refused,
        )

    def _has_room(self, size: int) -> bool:
        if not self._queue:
            return True  # one item alone always fits: the bound limits what waits, not what may be sent
        if len(self._queue) >= self._max_items:
            return False
        return self._max_bytes is None or self._queued_bytes + size <= self._max_bytes

    def flush(self, timeout: float) -> bool:
        """Wait until everything offered so far is written; True only if nothing was lost.

        False after ``timeout`` seconds (an outage, a slow database), or when
        items were refused or failed to write since the previous flush (they
        were logged and counted).
        """
        deadline = time.monotonic() + timeout
        with self._progress:
            target = self._accepted
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._hurry.set()  # again after each batch: what is left goes out without lingering
                self._progress.wait(min(left, 1.0))
            lost = self.refused + self.failed
            clean = lost == self._lost_reported
            self._lost_reported = lost
            return clean

    def stop(self, timeout: float) -> bool:
        """Write what is queued, then end the thread; True if it ended within ``timeout`` (ask again to wait more)."""
        with self._lock:
            self._stopping = True
            self._stop_requested = True
            self._items_ready.notify_all()
            self._room.notify_all()
        self._hurry.set()
        self._thread.join(timeout)
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

    def _take(self) -> list[T]:
        """Wait for one item, then gather more for up to ``linger`` seconds, up to a batch; [] at the stop."""
        with self._lock:
            while not self._queue and not self._overflowing() and not self._stop_requested:
                self._items_ready.wait()
        # Held here while paused, so that what is queued meanwhile goes out in one batch.
        self._open.wait()
        if self._linger > 0 and not self._stop_requested:
            self._hurry.wait(self._linger)
        self._hurry.clear()
        with self._lock:
            items: list[T] = []
            while self._queue and len(items) < self._batch_size:
                item, size = self._queue.popleft()
                self._queued_bytes -= size
                items.append(item)
            if self._overflow is not None and len(items) < self._batch_size and self._overflowing():
                before = len(self._overflow)
                read = self._overflow.take(self._batch_size - len(items))
                unreadable = before - len(self._overflow) - len(read)
                if unreadable > 0:  # lines a crash cut short: lost, and said so
                    self.failed += unreadable
                    self._settled += unreadable
                    self._progress.notify_all()
                items.extend(read)
            self._room.notify_all()
        return items

    def _overflowing(self) -> bool:
        return self._overflow is not None and len(self._overflow) > 0

    def _run(self) -> None:
        try:
            while True:
                items = self._take()
                if not items:
                    return  # stop requested and nothing queued
                failed = self._write_until_done(items)
                with self._progress:
                    self.failed += failed
                    self._settled += len(items)
                    self._progress.notify_all()
        finally:
            with self._lock:
                self._stopping = True
                self.refused += len(self._queue)  # left behind only if the thread itself died
                # The overflow's items stay in its file, for the next process to adopt.
                self._settled += len(self._queue) + (len(self._overflow) if self._overflow is not None else 0)
                self._queue.clear()
                self._progress.notify_all()
                self._room.notify_all()
            self._on_stop()

    def _write_until_done(self, items: list[T]) -> int:
        """Write the batch, through an outage if need be; the number of items that failed for good."""
        backoff = FIRST_BACKOFF
        next_summary = 0.0
        while True:
            try:
                failed = self._write_batch(items)
            except Exception as exc:  # the thread must outlive any error
                if not self._is_outage(exc):
                    logger.exception("taskops: the background writer failed on a batch of %d", len(items))
                    return len(items)
                now = time.monotonic()
                if self._outage_since is None:
                    self._outage_since = now
                    next_summary = now + SUMMARY_INTERVAL
                    logger.error(
                        "taskops: the database is unavailable (%s); %s keeps its records and tries again",
                        exc,
                        self.name,
                    )
                elif now >= next_summary:
                    next_summary = now + SUMMARY_INTERVAL
                    logger.warning(
                        "taskops: the database is still unavailable after %.0fs; %d records waiting, %d refused so far",
                        now - self._outage_since,
                        self.backlog(),
                        self.refused,
                    )
                # Let flush() and stop() see the outage; a stop gives up after its timeout (the thread is a daemon).
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if self._outage_since is not None:
                logger.warning(
                    "taskops: the database answers again after %.1fs; %s writes the %d records it kept",
                    time.monotonic() - self._outage_since,
                    self.name,
                    self.backlog(),
                )
                self._outage_since = None
            return failed
