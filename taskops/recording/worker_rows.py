"""The worker's rows: a dispatch as the worker knows it, for when the publisher's row has not landed.

The publisher's record is written in the background (or at its
transaction's commit, or never, if that rolled back), so any worker write
may come first. It then creates the row from the message alone, marked
``source = worker``, and the publisher's late write fills in its own columns
(:mod:`taskops.recording.columns`). The worker sees a message three ways,
by where it writes: the running task's request (the pool child: the start,
the end), Celery's ``Request`` (the main process: the receipt of a task
that waits for its ETA, a revocation), and the raw kombu message (the main
process: an unknown task, a rejection). :class:`MessageFacts` reads each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from kombu.exceptions import ContentDisallowed, DecodeError

from taskops.models import Source
from taskops.recording.columns import Progress
from taskops.recording.records import OPERATOR_HEADER, Row, clipped, operator_columns, read_operator, ref_key
from taskops.recording.redaction import worker_arguments
from taskops.staleness import StartVerdict
from taskops.wire import HEADER, TaskopsHeader, parse_time
from taskops.wire.lanes import queue_of
from taskops.wire.limits import installed_model

#: The headers a row is made from; a running task's request holds them as attributes.
REQUEST_HEADERS = (
    "eta",
    "expires",
    "retries",
    "parent_id",
    "root_id",
    "group",
    "argsrepr",
    "kwargsrepr",
    HEADER,
    OPERATOR_HEADER,
)


@attrs.frozen
class WorkerWrite:
    """One write of the worker, for a store: the columns it sets, and what it may replace.

    ``make_row`` and ``make_refs`` build the rows that create the dispatch
    when the publisher's is not there (called only when needed).
    """

    task_id: str
    fields: Row
    progress: Progress
    make_row: Callable[[], Row]
    make_refs: Callable[[], list[Row]]
    #: The refs' columns this write updates on a row that exists (the start's drift); none for the others.
    ref_fields: tuple[str, ...] = ()


@attrs.frozen
class MessageFacts:
    """What the worker knows about one message, wherever it stands."""

    #: As the column holds it (Celery allows longer ids; the publisher clips alike).
    task_id: str = attrs.field(converter=clipped)
    task_name: str
    #: The message's headers (eta, expires, retries, ids, reprs, ``taskops``), or what a request kept of them.
    headers: Mapping[str, Any]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    queue: str = ""

    @classmethod
    def of_task(cls, task: Any) -> MessageFacts:
        """The running task's request (the pool child)."""
        return cls.of_context(task.request, task.name)

    @classmethod
    def of_context(cls, request: Any, task_name: str) -> MessageFacts:
        """A task request (Celery's ``Context``): the headers are its attributes."""
        headers = {name: value for name in REQUEST_HEADERS if (value := getattr(request, name, None)) is not None}
        return cls.of_request_like(request, task_name, headers)

    @classmethod
    def of_request(cls, request: Any) -> MessageFacts:
        """Celery's ``Request`` of a message the worker's main process holds."""
        return cls.of_request_like(request, request.name or "", request.request_dict)

    @classmethod
    def of_request_like(cls, request: Any, task_name: str, headers: Mapping[str, Any]) -> MessageFacts:
        """Either kind of request: both have ``id``, ``args``, ``kwargs`` and ``delivery_info``."""
        return cls(
            task_id=request.id,
            task_name=task_name,
            headers=headers,
            args=request.args or (),
            kwargs=request.kwargs or {},
            queue=queue_of((request.delivery_info or {}).get("routing_key") or ""),
        )

    @classmethod
    def of_message(cls, task_id: str, message: Any) -> MessageFacts:
        """A raw kombu message the worker could not run (an unknown task, a rejection)."""
        headers = getattr(message, "headers", None) or {}
        args, kwargs = _body_arguments(message)
        queue = queue_of((getattr(message, "delivery_info", None) or {}).get("routing_key") or "")
        return cls(task_id, str(headers.get("task") or ""), headers, args, kwargs, queue)

    @property
    def header(self) -> TaskopsHeader | None:
        return TaskopsHeader.from_request(self.headers)

    @property
    def retries(self) -> int:
        retries = self.headers.get("retries")
        return retries if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0 else 0


def _body_arguments(message: Any) -> tuple[Sequence[Any], Mapping[str, Any]]:
    """The arguments of a raw message, decoded (no database); none when the body cannot be read."""
    try:
        body = message.decode()
    except (ContentDisallowed, DecodeError, ValueError, TypeError, AttributeError):
        return (), {}
    if isinstance(body, dict):  # task protocol 1
        body = [body.get("args"), body.get("kwargs")]
    if isinstance(body, list | tuple) and len(body) >= 2:
        args, kwargs = body[0], body[1]
        if isinstance(args, list | tuple) and isinstance(kwargs, dict):
            return args, kwargs
    return (), {}


def time_or_none(value: Any) -> dt.datetime | None:
    """A header's time, or None when it has none or it cannot be read."""
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None


def worker_row(facts: MessageFacts, when: dt.datetime, ref_count: int | None = None) -> Row:
    """The ``Dispatch`` columns a worker can fill from the message alone (no publisher's row).

    ``when``: the enqueue time when the message does not say (no ``taskops`` header).
    """
    header = facts.header
    stored = worker_arguments(facts.headers, facts.args, facts.kwargs, header)
    headers = facts.headers
    return {
        "task_id": facts.task_id,
        "task_name": clipped(facts.task_name),
        "args": stored.args,
        "kwargs": stored.kwargs,
        "redacted": stored.redacted,
        "queue": clipped(facts.queue),
        "eta": time_or_none(headers.get("eta")),
        "expires": time_or_none(headers.get("expires")),
        "enqueued_at": (header.enqueued_at if header else None) or when,
        "retries": facts.retries,
        "parent_id": clipped(headers.get("parent_id")),
        "root_id": clipped(headers.get("root_id")),
        "group_id": clipped(headers.get("group")),
        "in_transaction": bool(header and header.in_transaction),
        "ref_count": ref_count if ref_count is not None else len(header.refs) if header else 0,
        "source": Source.WORKER,
        **operator_columns(read_operator(headers.get(OPERATOR_HEADER))),
    }


def header_ref_rows(header: TaskopsHeader | None) -> list[Row]:
    """The ``ObjectRef`` columns of a worker-made row before the start judged anything: the header's refs."""
    if header is None:
        return []
    return [
        {**ref_key(ref.label, ref.pk, ref.argument), "digests": ref.digests, "digest_key": header.digest_key}
        for ref in header.refs
        if installed_model(ref.label) is not None  # a label from the wire: never a lookup that raises
    ]


def start_ref_rows(verdict: StartVerdict, header: TaskopsHeader | None) -> list[Row]:
    """The ``ObjectRef`` columns the worker writes at start, one row per judged ref."""
    key_id = header.digest_key if header else ""
    return [
        {
            **ref_key(ref.label, ref.pk, ref.argument),
            "digests": ref.digests,
            "digest_key": key_id,
            "drift": ref.drift,
            "changed_fields": ref.changed_fields,
            "likely_race": ref.likely_race,
            "checked_at": verdict.started_at,
        }
        for ref in verdict.refs
    ]
