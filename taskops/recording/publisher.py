"""The publisher's side: ``before_task_publish`` records each message as it is sent.

The arguments are still Python objects here: model instances among them are
found and snapshotted in memory (:mod:`taskops.recording.records`) and the
``taskops`` header is added for the worker. The record is handed to the
writer (:mod:`taskops.recording.background`) only once ``after_task_publish``
says the broker took the message: a publish that raised leaves no row (a
``PENDING`` row would wait for a task that will never run). Inside a
transaction it is handed over when that transaction commits (never after a
rollback); inside a :func:`batch`, at the end of the block. Arguments that
cannot be sent are not recorded: kombu's encoder refuses them at the call,
and nothing is published.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, router, transaction

from taskops.conf import taskops_settings
from taskops.models import Dispatch
from taskops.recording.background import hand_over
from taskops.recording.guard import enabled, guarded
from taskops.recording.records import DispatchRecord, build_record, clipped
from taskops.wire import HEADER, CodecError

_batch = threading.local()
#: The record of the message being published by this thread, until the broker took it.
_unsent = threading.local()


@contextmanager
def batch() -> Iterator[None]:
    """Buffer the dispatches published inside the block; write them in one go at its end.

    For code that publishes many tasks at once (a group, a loop of
    ``delay``): one round trip for all of them instead of one each. A worker
    that starts a task before the block ends creates its row, and the two
    writes merge.
    """
    outer = getattr(_batch, "records", None)
    if outer is not None:  # nested: the outer block writes
        yield
        return
    records: list[DispatchRecord] = []
    _batch.records = records
    try:
        yield
    finally:
        _batch.records = None
        if records:
            with guarded("writing a batch of dispatches"):
                hand_over(records)


def on_before_task_publish(
    sender: str | None = None,
    body: Any = None,
    exchange: Any = None,
    routing_key: Any = None,
    headers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    if headers is None or not enabled():
        return
    with guarded(f"recording the dispatch of {sender}"):
        try:
            record = build_record(body, headers, exchange, routing_key)
        except CodecError:
            return  # the encoder raises the same error at the call: nothing will be published
        headers[HEADER] = record.header().to_message(taskops_settings.HEADER_BYTES)
        # One at a time per thread: a publish that raised is replaced by the next one's.
        _unsent.record = record


def on_after_task_publish(sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The broker took the message: its record may be written now."""
    record = getattr(_unsent, "record", None)
    if record is None:
        return
    _unsent.record = None
    if clipped((headers or {}).get("id")) != record.task_id:  # the record's id is clipped to its column
        return  # not the message recorded (one published while recording was off)
    with guarded(f"recording the dispatch of {sender}"):
        submit(record)


def submit(record: DispatchRecord) -> None:
    """Hand the record over now, at the end of a :func:`batch`, or when the open transaction commits."""
    buffered = getattr(_batch, "records", None)
    if buffered is not None:
        buffered.append(record)
        return
    using = router.db_for_write(Dispatch)
    if connections[using].in_atomic_block:
        # Written with the publisher's data: never for a rolled-back transaction,
        # and never waiting on (or blocking) a worker's insert of the same task id.
        transaction.on_commit(lambda: _hand_over_at_commit([record]), using=using)
    else:
        hand_over([record])


def _hand_over_at_commit(records: list[DispatchRecord]) -> None:
    with guarded("writing dispatches at commit"):
        hand_over(records)
