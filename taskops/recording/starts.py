"""The worker's start, written with the end when the task ends soon after it starts.

A task that takes a few milliseconds would cost two writes of its row (the
start, then the end) a few milliseconds apart, each a new row version and
its index entries. The pool child holds the start instead (:func:`hold`)
for ``TASKOPS["START_LINGER"]`` seconds: if the task ends by then, the end
takes it (:func:`take`) and both go in one upsert; if not, a thread of the
pool child writes it when the time is up, so a long task shows ``STARTED``
a fraction of a second after it starts. Either order is safe: a start
written after the end is refused by the progress guard
(:class:`~taskops.recording.columns.Progress`). A pool child killed with a
start held loses only that start: the worker's main process records the
task's end (``WorkerLostError``), creating the row from the message if the
publisher's has not landed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from django.db import connections

from taskops.conf import taskops_settings
from taskops.recording.guard import guarded
from taskops.recording.worker_rows import WorkerWrite


class HeldStarts:
    """The starts one process holds, and the thread that writes those whose time is up."""

    def __init__(self, write: Callable[[WorkerWrite], None]) -> None:
        self.pid = os.getpid()
        self._write = write
        self._changed = threading.Condition()
        self._held: dict[str, tuple[float, WorkerWrite]] = {}
        self._waiting_for_any = False
        self._thread: threading.Thread | None = None

    def hold(self, write: WorkerWrite, linger: float) -> None:
        with self._changed:
            self._held[write.task_id] = (time.monotonic() + linger, write)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="taskops-starts", daemon=True)
                self._thread.start()
            elif self._waiting_for_any:
                # Only an idle thread needs waking: a busy one already waits for an earlier time.
                self._changed.notify()

    def take(self, task_id: str) -> WorkerWrite | None:
        with self._changed:
            held = self._held.pop(task_id, None)
        return held[1] if held is not None else None

    def _due(self) -> list[WorkerWrite]:
        """Wait until a held start's time is up; those starts, taken."""
        with self._changed:
            while True:
                now = time.monotonic()
                due = [task_id for task_id, (deadline, _) in self._held.items() if deadline <= now]
                if due:
                    return [self._held.pop(task_id)[1] for task_id in due]
                wake = min((deadline for deadline, _ in self._held.values()), default=None)
                self._waiting_for_any = wake is None
                self._changed.wait(None if wake is None else wake - now)

    def _run(self) -> None:
        while True:
            for write in self._due():
                with guarded(f"recording the start of {write.task_id}"):
                    # A long-lived thread: drop a connection that broke or outlived CONN_MAX_AGE.
                    for connection in connections.all(initialized_only=True):
                        connection.close_if_unusable_or_obsolete()
                    self._write(write)


_held: HeldStarts | None = None
_lock = threading.Lock()


def hold(write: WorkerWrite, now: Callable[[WorkerWrite], None]) -> None:
    """Hold a start for the end to take, or write it with ``now`` (no linger configured)."""
    global _held
    linger = taskops_settings.START_LINGER
    if not linger:
        now(write)
        return
    with _lock:
        if _held is None or _held.pid != os.getpid():
            _held = HeldStarts(now)
        held = _held
    held.hold(write, linger)


def take(task_id: str) -> WorkerWrite | None:
    """The start of ``task_id`` this process still holds (now the caller's to write), if any."""
    held = _held
    if held is None or held.pid != os.getpid():
        return None
    return held.take(task_id)


def write_held(task_id: str | None) -> None:
    """Write the start of ``task_id`` now if it is held (before anything that must follow it)."""
    write = take(task_id) if task_id else None
    if write is not None and _held is not None:
        _held._write(write)


def _forget_in_child() -> None:
    # A forked child holds nothing of its parent's (and the parent's thread is not there).
    global _held, _lock
    _held = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
