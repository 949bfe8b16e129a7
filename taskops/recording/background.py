"""The publisher's records, written behind its back: one writer thread per process.

``delay()`` hands its record over (:func:`hand_over`) and returns; the thread
writes records in batches through the store of the database
(:func:`write`). :func:`flush` waits until what was handed over is written,
and says whether all of it was. Writes happen at the call instead when the
caller must see errors (``STRICT``), when ``WRITE_BEHIND`` is off, and inside
a running task (so that a retry's write lands in order with the worker's own).

A publish never waits on the database: when the queue is full (its
``WRITE_QUEUE_RECORDS`` or ``WRITE_QUEUE_BYTES``), the record goes to a local
spool file (:mod:`taskops.recording.spool`), read back when there is room;
past ``SPOOL_BYTES`` too, the publish waits at most ``PUBLISH_WAIT`` for
room, then the record is dropped, logged (once, then once a minute) and
counted (:func:`dropped_count`). When the database is
down, the thread keeps its batch and tries again with a growing pause
(:mod:`taskops.recording.writer`). A worker's writes that meet an outage are
kept the same way by a thread of their own (:func:`defer`).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from celery._state import get_current_task
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, router

from taskops.conf import taskops_settings
from taskops.models import Dispatch
from taskops.recording.guard import log_error, logger
from taskops.recording.health import drop_broken_connections, is_outage
from taskops.recording.records import DispatchRecord
from taskops.recording.spool import Spool, dump_record, load_record
from taskops.recording.store import store_for
from taskops.recording.writer import Writer

#: Records the background writer takes in one batch (one write, one round trip on PostgreSQL).
WRITE_BATCH_SIZE = 500
#: Bytes a record is counted for besides its arguments (its columns, refs, the objects around them).
RECORD_OVERHEAD = 1_000
#: Bytes a ref is counted for besides its kept values.
REF_OVERHEAD = 300
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
    # A full queue means the database is down or not keeping up: the publish
    # waits a little for room, never longer than PUBLISH_WAIT in all; what
    # does not fit then is dropped, logged and counted by the writer.
    deadline = time.monotonic() + float(taskops_settings.PUBLISH_WAIT)
    for record in records:
        writer.offer(record, wait=max(0.0, deadline - time.monotonic()))


def record_size(record: DispatchRecord) -> int:
    """About the bytes a queued record holds (what the ``WRITE_QUEUE_BYTES`` budget counts)."""
    size = RECORD_OVERHEAD + len(record.args) + len(record.kwargs)
    for ref in record.refs:
        size += REF_OVERHEAD + len(ref.text) + sum(len(str(value)) for value in ref.values.values())
    return size


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
    global _writer
    writer = _writer
    if writer is not None and writer.pid == os.getpid() and writer.is_running():
        return writer
    with _writer_lock:
        if _writer is None or _writer.pid != os.getpid() or not _writer.is_running():
            writer = Writer(
                write_batch,
                name="taskops-writer",
                maxsize=taskops_settings.WRITE_QUEUE_RECORDS,
                max_bytes=taskops_settings.WRITE_QUEUE_BYTES,
                size_of=record_size,
                is_outage=_is_outage,
                overflow=open_spool(),
                batch_size=WRITE_BATCH_SIZE,
                linger=WRITE_LINGER,
                on_stop=connections.close_all,  # the thread's own connections only
            )
            try:
                writer.start()
            except RuntimeError:  # interpreter shutting down: no new threads
                return None
            _writer = writer
            _exit_hook()
        return _writer


def open_spool() -> Spool[DispatchRecord] | None:
    """This process's spool (``SPOOL_DIR``, ``SPOOL_BYTES``), in a folder of the dispatches' database."""
    max_bytes = int(taskops_settings.SPOOL_BYTES)
    if not max_bytes:
        return None
    base = taskops_settings.SPOOL_DIR or os.path.join(tempfile.gettempdir(), "taskops-spool")
    # One folder per database: a spool adopted from a dead process is written where it belongs.
    db = connections[router.db_for_write(Dispatch)].settings_dict
    place = f"{db.get('ENGINE')}:{db.get('HOST')}:{db.get('PORT')}:{db.get('NAME')}"
    folder = Path(base) / hashlib.sha256(place.encode()).hexdigest()[:16]
    try:
        return Spool(folder, max_bytes, dump_record, load_record)
    except OSError:
        logger.exception("taskops: no spool in %s; records past the queue's bounds will be dropped", folder)
        return None


def _exit_hook() -> None:
    """Flush at the interpreter's exit, once per process (a forked child registers its own)."""
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        atexit.register(_flush_at_exit)
        _exit_hook_pid = os.getpid()


def _forget_writer_in_child() -> None:
    # The parent's thread does not exist in a forked child, and its lock may
    # have been held at the fork: start from nothing (the parent writes what it queued).
    global _writer, _writer_lock, _deferred
    _writer = None
    _deferred = None
    _writer_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_writer_in_child)


def _flush_at_exit() -> None:
    if not shutdown(EXIT_FLUSH_TIMEOUT):
        logger.warning("taskops: dispatch records still unwritten after %ss at exit", EXIT_FLUSH_TIMEOUT)


def flush(timeout: float = 10) -> bool:
    """Block until every record this process handed to its writers so far is written.

    True when all of it was written (also when there is nothing to wait
    for). False after ``timeout`` seconds (the database is down or slow: the
    records are still kept and retried), or when records were dropped or
    failed to write since the previous ``flush()`` (logged and counted:
    :func:`dropped_count`, :func:`taskops.recording.error_count`).
    """
    deadline = time.monotonic() + timeout
    clean = True
    for writer in own_writers():
        clean = writer.flush(max(0.0, deadline - time.monotonic())) and clean
    return clean


def own_writers() -> list[Writer[Any]]:
    """This process's writers (a forked child's inherited ones belong to its parent)."""
    return [writer for writer in (_writer, _deferred) if writer is not None and writer.pid == os.getpid()]


def backlog() -> int:
    """Records handed to this process's writers and not yet written (nor given up)."""
    return sum(writer.backlog() for writer in own_writers())


def dropped_count() -> int:
    """Records this process dropped because its writers' queues were full (``WRITE_QUEUE_*``)."""
    return sum(writer.refused for writer in own_writers())


def shutdown(timeout: float = 10) -> bool:
    """Write what is queued, stop this process's writer thread and close its connection.

    The next dispatch starts a new one. Runs at exit; tests call it before
    the test database is dropped.
    """
    deadline = time.monotonic() + timeout
    stopped = True
    for writer in own_writers():
        stopped = writer.stop(max(0.0, deadline - time.monotonic())) and stopped
    return stopped


@contextmanager
def writer_paused() -> Iterator[None]:
    """Hold this process's writer back inside the block (a test hook: let a worker write first)."""
    writer = current_writer()
    if writer is None:
        raise RuntimeError("taskops: no background writer in this process")
    with writer.paused():
        yield


def _is_outage(exc: BaseException) -> bool:
    return is_outage(exc, router.db_for_write(Dispatch))


def write_batch(records: list[DispatchRecord]) -> int:
    """The writer thread's write: the whole batch at once, then one by one if that failed.

    Returns how many records failed for good (logged and counted); raises
    when the database is unavailable, so that the writer keeps the batch.
    """
    # A long-lived thread: drop a connection that broke, as Django does around each request.
    drop_broken_connections()
    try:
        write(records)
        return 0
    except Exception as exc:
        if _is_outage(exc):
            raise
        if len(records) == 1:
            log_error(f"writing the dispatch of {records[0].task_id}")
            return 1
        logger.warning("taskops: a batch of %d dispatches failed; writing them one by one", len(records), exc_info=True)
    # One bad record must not lose the others.
    failed = 0
    for record in records:
        try:
            write([record])
        except Exception as exc:
            if _is_outage(exc):
                raise  # the writer keeps the batch (upserts: the ones written are written again, unchanged)
            log_error(f"writing the dispatch of {record.task_id}")
            failed += 1
    return failed


# --- A worker's writes that met an outage -------------------------------------


@attrs.define
class _Deferred:
    write: Callable[[], None]
    done: bool = False


_deferred: Writer[_Deferred] | None = None


def defer(write_later: Callable[[], None]) -> bool:
    """Keep a write that met an outage (a worker's start or end) and retry it until the database answers.

    False when it could not be kept (queue full: dropped, logged, counted).
    """
    global _deferred
    with _writer_lock:
        writer = _deferred
        if writer is None or writer.pid != os.getpid() or not writer.is_running():
            writer = Writer(
                _write_each,
                name="taskops-deferred-writer",
                maxsize=taskops_settings.WRITE_QUEUE_RECORDS,
                batch_size=WRITE_BATCH_SIZE,
                is_outage=_is_outage,
                on_stop=connections.close_all,
            )
            writer.start()
            _deferred = writer
            _exit_hook()
    return writer.offer(_Deferred(write_later))


def deferring() -> bool:
    """Whether writes met an outage and wait in this process: later ones wait behind them, in order."""
    writer = _deferred
    return writer is not None and writer.pid == os.getpid() and writer.backlog() > 0


def _write_each(writes: list[_Deferred]) -> int:
    """In order; after an outage the writer calls again with the same list, and the ones done are passed over."""
    drop_broken_connections()
    failed = 0
    for deferred in writes:
        if deferred.done:
            continue
        try:
            deferred.write()
        except Exception as exc:
            if _is_outage(exc):
                raise
            log_error("writing a worker's update kept through an outage")
            failed += 1
        deferred.done = True
    return failed
