"""Recording: one ``Dispatch`` row per task id, one ``ObjectRef`` per referenced instance.

- :mod:`~taskops.recording.publisher`: ``before_task_publish`` builds the record and the header;
- :mod:`~taskops.recording.records`: the publisher's record and rows;
- :mod:`~taskops.recording.redaction`: what of the arguments may be stored;
- :mod:`~taskops.recording.worker_rows`: the rows a worker creates when the publisher's are not there;
- :mod:`~taskops.recording.columns`: which side owns which column, and the state never moving back;
- :mod:`~taskops.recording.background` and :mod:`~taskops.recording.writer`: the write-behind thread;
- :mod:`~taskops.recording.spool`: where records past the writer's bounds wait (a JSON-lines file);
- :mod:`~taskops.recording.health`: database outages told from bad records, broken connections dropped;
- :mod:`~taskops.recording.store`: the writes, one store per database vendor;
- :mod:`~taskops.recording.worker`: the start, the end, revocations and rejections;
- :mod:`~taskops.recording.starts`: a start held to be written with the end;
- :mod:`~taskops.recording.deliveries`: a re-dispatched call's second delivery of an attempt is not run;
- :mod:`~taskops.recording.guard`: errors are logged and counted, never raised (unless STRICT).

Eager mode (``task_always_eager``, ``.apply()``) is not recorded: nothing is
published, and a task run in-process is not a dispatch.

Public names: :func:`flush`, :func:`backlog`, :func:`shutdown`, :func:`batch`,
:func:`error_count` (also ``errors``), :func:`count_error`, :func:`dropped_count`, :class:`StrictRecordingError`,
:func:`connect` (called by the app's ``ready()``).
"""

from __future__ import annotations

from typing import Any

from celery import signals as celery_signals

from taskops.recording import deliveries
from taskops.recording.background import backlog, dropped_count, flush, shutdown, writer_paused
from taskops.recording.deliveries import duplicate_delivery, is_duplicate
from taskops.recording.guard import StrictRecordingError, count_error, error_count
from taskops.recording.publisher import batch, on_after_task_publish, on_before_task_publish
from taskops.recording.records import prepare_arguments
from taskops.recording.redaction import REPRS, reprs_not_given
from taskops.recording.starts import write_held as write_held_start
from taskops.recording.worker import (
    on_task_failure,
    on_task_postrun,
    on_task_prerun,
    on_task_received,
    on_task_rejected,
    on_task_retry,
    on_task_revoked,
    on_task_skipped,
    on_task_unknown,
    record_start,
)
from taskops.signals import task_skipped

__all__ = [
    "REPRS",
    "StrictRecordingError",
    "backlog",
    "batch",
    "connect",
    "count_error",
    "dropped_count",
    "duplicate_delivery",
    "error_count",
    "flush",
    "is_duplicate",
    "prepare_arguments",
    "record_start",
    "reprs_not_given",
    "shutdown",
    "write_held_start",
    "writer_paused",
]

_RECEIVERS = (
    (celery_signals.before_task_publish, on_before_task_publish),
    (celery_signals.after_task_publish, on_after_task_publish),
    (celery_signals.task_received, on_task_received),
    (celery_signals.task_prerun, on_task_prerun),
    (celery_signals.task_prerun, deliveries.claim_on_prerun),
    (celery_signals.task_postrun, on_task_postrun),
    (celery_signals.task_failure, on_task_failure),
    (celery_signals.task_retry, on_task_retry),
    (celery_signals.task_revoked, on_task_revoked),
    (celery_signals.task_rejected, on_task_rejected),
    (celery_signals.task_unknown, on_task_unknown),
    (task_skipped, on_task_skipped),
)


def connect() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"taskops.recording.{receiver.__name__}")


def __getattr__(name: str) -> Any:
    # ``taskops.recording.errors``, as documented before error_count(): the live count.
    if name == "errors":
        return error_count()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
