"""The publisher's records, written behind its back: one writer thread per process.

``delay()`` hands its record over (:func:`hand_over`) and returns; the thread
writes records in batches through the store of the database
(:func:`write`). :func:`flush` waits until what was handed over is written.
Writes happen at the call instead when the caller must see errors
(``STRICT``), when ``WRITE_BEHIND`` is off, inside a running task (so that a
retry's write lands in order with the worker's own), and when the queue is
full (backpressure).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery._state import get_current_task
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, router

from taskops.conf import taskops_settings
from taskops.models import Dispatch
from taskops.recording.guard import log_error, logger
from taskops.recording.records import DispatchRecord
from taskops.recording.store import store_for
from taskops.recording.writer import Writer

#: Records the background writer takes in one batch (one write, one round trip on PostgreSQL).
WRITE_BATCH_SIZE = 500
#: Records waiting for the writer before a publisher writes its own at the call (backpressure).
WRITE_QUEUE_SIZE = 10_000
#: Seconds the writer waits for more records once it has one (flush() cuts it short).
WRITE_LINGER = 0.02
#: Seconds the interpreter's exit waits for the writer to write what is queued.
EXIT_FLUSH_TIMEOUT = 10.0


def write(records: list[DispatchRecord]) -> None:
    """Upsert the records now, through the store of the dispatches' database."""
    using = router.db_for_write(Dispatch)
    try:
        store_for(using).write(records, using)
    except IntegrityError:
        if connections[using].in_atomic_block:
            raise  # the caller's transaction is broken now: nothing to retry in it
        # A content type id this long-lived process cached may be gone (a
        # restored or re-created database): read them afresh, once.
        ContentType.objects.clear_cache()
        store_for(using).write(records, using)


def hand_over(records: list[DispatchRecord]) -> None:
    """Queue the records for this process's writer thread, or write them now when the caller must wait."""
    writer = current_writer() if writes_behind() else None
    if writer is None:
        write(records)
        return
    # A full queue means the database is not keeping up: the caller writes its
    # own record (backpressure) rather than the queue growing or dropping it.
    left = [record for record in records if not writer.offer(record)]
    if left:
        write(left)


def writes_behind() -> bool:
    """Whether a dispatch published here and now may be written by the background thread."""
    if not taskops_settings.WRITE_BEHIND or taskops_settings.STRICT:
        return False  # STRICT: an error must raise at the call, so the call writes
    # Published from inside a running task (a retry, the next step of a chain, a
    # chord body): written at the call, so that it lands in order with this
    # worker's own start and finish writes for the same rows. A retry's write
    # sets the state to RETRY; from a queue it could land after the next
    # attempt's start and move the state back.
    task = get_current_task()
    return not getattr(getattr(task, "request", None), "id", None)


_writer: Writer[DispatchRecord] | None = None
_writer_lock = threading.Lock()
_exit_hook_pid: int | None = None


def current_writer() -> Writer[DispatchRecord] | None:
    """This process's writer thread, started on first use (and again in a forked child)."""
    global _writer, _exit_hook_pid
    writer = _writer
    if writer is not None and writer.pid == os.getpid() and writer.is_running():
        return writer
    with _writer_lock:
        if _writer is None or _writer.pid != os.getpid() or not _writer.is_running():
            writer = Writer(
                write_batch,
                name="taskops-writer",
                maxsize=WRITE_QUEUE_SIZE,
                batch_size=WRITE_BATCH_SIZE,
                linger=WRITE_LINGER,
                on_stop=connections.close_all,  # the thread's own connections only
            )
            try:
                writer.start()
            except RuntimeError:  # interpreter shutting down: no new threads
                return None
            _writer = writer
            if _exit_hook_pid != writer.pid:
                atexit.register(_flush_at_exit)
                _exit_hook_pid = writer.pid
        return _writer


def _forget_writer_in_child() -> None:
    # The parent's thread does not exist in a forked child, and its lock may
    # have been held at the fork: start from nothing (the parent writes what it queued).
    global _writer, _writer_lock
    _writer = None
    _writer_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_writer_in_child)


def _flush_at_exit() -> None:
    if not shutdown(EXIT_FLUSH_TIMEOUT):
        logger.warning("taskops: dispatch records still unwritten after %ss at exit", EXIT_FLUSH_TIMEOUT)


def flush(timeout: float = 10) -> bool:
    """Block until every dispatch this process handed to its writer so far is written.

    True when done (also when there is nothing to wait for); False after
    ``timeout`` seconds. A record that failed to write counts as done: it
    was logged and counted (:func:`taskops.recording.error_count`).
    """
    writer = _writer
    if writer is None or writer.pid != os.getpid():
        return True
    return writer.flush(timeout)


def shutdown(timeout: float = 10) -> bool:
    """Write what is queued, stop this process's writer thread and close its connection.

    The next dispatch starts a new one. Runs at exit; tests call it before
    the test database is dropped.
    """
    writer = _writer
    if writer is None or writer.pid != os.getpid():
        return True
    return writer.stop(timeout)


@contextmanager
def writer_paused() -> Iterator[None]:
    """Hold this process's writer back inside the block (a test hook: let a worker write first)."""
    writer = current_writer()
    if writer is None:
        raise RuntimeError("taskops: no background writer in this process")
    with writer.paused():
        yield


def write_batch(records: list[DispatchRecord]) -> None:
    """The writer thread's write: the whole batch at once, then one by one if that failed."""
    connection = connections[router.db_for_write(Dispatch)]
    # A long-lived thread: drop a connection that broke or outlived CONN_MAX_AGE,
    # as Django does around each request.
    connection.close_if_unusable_or_obsolete()
    try:
        write(records)
        return
    except Exception:  # noqa: BLE001  # logged with its traceback, then retried record by record
        if len(records) == 1:
            log_error(f"writing the dispatch of {records[0].task_id}")
            return
        logger.warning("taskops: a batch of %d dispatches failed; writing them one by one", len(records), exc_info=True)
    # One bad record must not lose the others.
    for record in records:
        connection.close_if_unusable_or_obsolete()
        try:
            write([record])
        except Exception:  # noqa: BLE001  # logged and counted, as at the call
            log_error(f"writing the dispatch of {record.task_id}")
