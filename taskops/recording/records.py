"""What each side knows about a dispatch, as rows ready for any store.

The publisher's :class:`DispatchRecord` is built from the message before it
is sent (the arguments are still Python objects: snapshots are taken in
memory, no query). The worker's rows are built from the request and the
start's verdict, for when the publisher's row has not landed. Both sides'
row builders write exactly the columns :mod:`taskops.recording.columns`
gives them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.models import Model, QuerySet
from django.utils import timezone

from taskops.models import Source, State
from taskops.staleness import StartVerdict, snapshot
from taskops.wire import (
    AttrsPlaceholder,
    HeaderRef,
    ModelRef,
    RefListPlaceholder,
    RefPlaceholder,
    TaskopsHeader,
    dumps,
    json_pk,
    parse_time,
)
from taskops.wire.header import ARGUMENT_CHARS

#: How deep the argument walk goes looking for model instances.
MAX_WALK_DEPTH = 32
#: Characters of an instance's ``str()`` kept for display.
REPR_CHARS = 200
#: Message header of operator dispatches: ``{"by": user id, "op": Redispatch id, "of": source Dispatch id}``.
OPERATOR_HEADER = "taskops_operator"

Row = dict[str, Any]


@attrs.define
class RefRecord:
    """One model instance found in a dispatch's arguments."""

    label: str
    pk: Any
    argument: str
    digests: dict[str, str]
    values: dict[str, Any]
    text: str
    db: str | None


@attrs.define
class DispatchRecord:
    """What the publisher knows about one message, before any row is written."""

    task_id: str
    task_name: str
    args: str
    kwargs: str
    queue: str
    eta: dt.datetime | None
    expires: dt.datetime | None
    enqueued_at: dt.datetime
    retries: int
    parent_id: str
    root_id: str
    group_id: str
    in_transaction: bool
    refs: list[RefRecord]
    #: ``dispatched_by_id``, ``operation_id``, ``redispatch_of_id`` of an operator dispatch.
    operator: dict[str, int | None] = attrs.Factory(dict)

    def header(self) -> TaskopsHeader:
        """The ``taskops`` message header: enough for the worker to judge staleness alone."""
        refs = tuple(HeaderRef(ref.label, ref.pk, ref.argument, ref.digests) for ref in self.refs)
        return TaskopsHeader(self.enqueued_at, self.in_transaction, refs)

    def row(self) -> Row:
        """The ``Dispatch`` columns the publisher writes (every other one takes its default)."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "args": self.args,
            "kwargs": self.kwargs,
            "queue": self.queue,
            "eta": self.eta,
            "expires": self.expires,
            "enqueued_at": self.enqueued_at,
            "retries": self.retries,
            "state": State.RETRY if self.retries else State.PENDING,
            "parent_id": self.parent_id,
            "root_id": self.root_id,
            "group_id": self.group_id,
            "in_transaction": self.in_transaction,
            "ref_count": len(self.refs),
            "source": Source.PUBLISHER,
            **{column: self.operator.get(column) for column in OPERATOR_COLUMNS},
        }

    def ref_rows(self) -> list[Row]:
        """The ``ObjectRef`` columns the publisher writes, one row per ref."""
        return [
            {
                **ref_key(ref.label, ref.pk, ref.argument),
                "object_repr": ref.text,
                "digests": ref.digests,
                "values": ref.values,
            }
            for ref in self.refs
        ]


def find_instances(value: Any, path: str, into: list[tuple[str, Any]], depth: int = 0) -> None:
    """Collect ``(argument path, instance or placeholder)`` for every model reference in ``value``.

    A QuerySet counts only if it was evaluated (its instances are in memory);
    an unevaluated one is not fetched just to be recorded.
    """
    if depth > MAX_WALK_DEPTH:
        return
    if isinstance(value, Model | RefPlaceholder):
        into.append((path, value))
    elif isinstance(value, QuerySet):
        for index, item in enumerate(value._result_cache or ()):
            into.append((f"{path}[{index}]", item))
    elif isinstance(value, RefListPlaceholder):
        into.extend((f"{path}[{index}]", RefPlaceholder(ref)) for index, ref in enumerate(value.refs))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            find_instances(item, f"{path}[{index}]", into, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            find_instances(item, f"{path}.{key}", into, depth + 1)
    elif isinstance(value, AttrsPlaceholder):
        find_instances(value.data, path, into, depth + 1)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            find_instances(getattr(value, field.name), f"{path}.{field.name}", into, depth + 1)


def ref_record(argument: str, item: Any) -> RefRecord:
    if isinstance(item, RefPlaceholder):  # a worker re-publishing decoded arguments
        return RefRecord(item.ref.label, item.ref.pk, argument[:ARGUMENT_CHARS], {}, {}, "", None)
    return RefRecord(
        label=item._meta.label_lower,
        pk=json_pk(item.pk),
        argument=argument[:ARGUMENT_CHARS],
        digests=snapshot.take(item),
        values=snapshot.values(item),
        text=str(item)[:REPR_CHARS],
        db=item._state.db,
    )


def build_record(body: Any, headers: dict[str, Any], exchange: Any, routing_key: Any) -> DispatchRecord:
    """Everything the publisher records about one message."""
    if isinstance(body, dict):  # task protocol 1
        args, kwargs = body.get("args") or (), body.get("kwargs") or {}
    else:
        args, kwargs = body[0], body[1]
    found: list[tuple[str, Any]] = []
    find_instances(list(args), "args", found)
    for key, item in kwargs.items():
        find_instances(item, f"kwargs.{key}", found)
    refs = [ref_record(argument, item) for argument, item in found]
    databases = {ref.db for ref in refs if ref.db}
    return DispatchRecord(
        task_id=headers["id"],
        task_name=headers.get("task") or "",
        args=dumps(list(args)),
        kwargs=dumps(dict(kwargs)),
        queue=str(routing_key or getattr(exchange, "name", exchange) or ""),
        eta=parse_time(headers.get("eta")),
        expires=parse_time(headers.get("expires")),
        enqueued_at=timezone.now(),
        retries=int(headers.get("retries") or 0),
        parent_id=headers.get("parent_id") or "",
        root_id=headers.get("root_id") or "",
        group_id=headers.get("group") or "",
        # The hazard: the worker may start before these rows are committed.
        in_transaction=any(connections[db].in_atomic_block for db in databases),
        refs=refs,
        operator=read_operator(headers.get(OPERATOR_HEADER)),
    )


#: Operator header keys and the ``Dispatch`` columns they fill.
OPERATOR_COLUMNS = {"dispatched_by_id": "by", "operation_id": "op", "redispatch_of_id": "of"}


def read_operator(value: Any) -> dict[str, int | None]:
    """The operator columns from the header (ids only; anything else is left out)."""
    if not isinstance(value, dict):
        return {}
    return {
        column: value[key]
        for column, key in OPERATOR_COLUMNS.items()
        if isinstance(value.get(key), int) and not isinstance(value.get(key), bool)
    }


# --- the worker's rows -----------------------------------------------------------


def worker_row(task: Any, header: TaskopsHeader | None, verdict: StartVerdict) -> Row:
    """The ``Dispatch`` columns a worker can fill from the message alone (no publisher's row)."""
    request = task.request
    operator = read_operator(getattr(request, OPERATOR_HEADER, None))
    return {
        "task_id": request.id,
        "task_name": task.name,
        "args": dumps(list(request.args or ())),
        "kwargs": dumps(dict(request.kwargs or {})),
        "queue": (request.delivery_info or {}).get("routing_key") or "",
        "eta": parse_time(request.eta),
        "expires": parse_time(request.expires),
        "enqueued_at": (header.enqueued_at if header else None) or verdict.started_at,
        "retries": request.retries or 0,
        "parent_id": request.parent_id or "",
        "root_id": request.root_id or "",
        "group_id": request.group or "",
        "in_transaction": bool(header and header.in_transaction),
        "ref_count": len(verdict.refs),
        "source": Source.WORKER,
        **{column: operator.get(column) for column in OPERATOR_COLUMNS},
    }


def start_ref_rows(verdict: StartVerdict) -> list[Row]:
    """The ``ObjectRef`` columns the worker writes at start, one row per judged ref."""
    return [
        {
            **ref_key(ref.label, ref.pk, ref.argument),
            "digests": ref.digests,
            "drift": ref.drift,
            "changed_fields": ref.changed_fields,
            "likely_race": ref.likely_race,
            "checked_at": verdict.started_at,
        }
        for ref in verdict.refs
    ]


def ref_key(label: str, pk: Any, argument: str) -> Row:
    """The columns both sides write to name a ref: where it stood, which row it is."""
    return {"argument": argument, "content_type_id": content_type_for(label).pk, "object_pk": str(pk)}


def content_type_for(label: str) -> ContentType:
    """The content type of a model label (cached by Django after the first query)."""
    return ContentType.objects.get_for_model(ModelRef(label, None).model)
