"""What the publisher knows about a dispatch, as rows ready for any store.

The publisher's :class:`DispatchRecord` is built from the message before it
is sent: the arguments are still Python objects, so model instances are
snapshotted in memory. Queries only where the rows are not in memory: an
unevaluated QuerySet is evaluated (one query, whose rows the encoder then
sends), and the refs a worker publishes again (a chain's next step, a chord
body, a retry: decoded placeholders) are fetched, one query per model class,
so that every task that runs with refs has snapshots to be judged against.
The row builders write exactly the columns :mod:`taskops.recording.columns`
gives the publisher; the worker's are in :mod:`taskops.recording.worker_rows`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable
from django.utils import timezone

from taskops.models import Source, State
from taskops.recording.redaction import kept_kwargs, message_reprs, publisher_arguments
from taskops.staleness import snapshot
from taskops.wire import (
    AttrsPlaceholder,
    HeaderRef,
    ModelRef,
    RefListPlaceholder,
    RefPlaceholder,
    TaskopsHeader,
    json_pk,
    parse_time,
    resolve_refs,
)
from taskops.wire.encode import check_sendable
from taskops.wire.header import ARGUMENT_CHARS
from taskops.wire.lanes import queue_of

#: How deep the argument walk goes looking for model instances.
MAX_WALK_DEPTH = 32
#: Characters of an instance's ``str()`` kept for display.
REPR_CHARS = 200

Row = dict[str, Any]
#: Characters of a name or id kept (the ``Dispatch`` text columns hold 255).
NAME_CHARS = 255


def clipped(value: Any) -> str:
    """A name or id from the message as the column holds it (Celery allows longer; both sides clip alike)."""
    return str(value or "")[:NAME_CHARS]


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

    task_id: str = attrs.field(converter=clipped)
    task_name: str
    #: The encoded arguments, or the publisher's reprs when ``redacted``.
    args: str
    kwargs: str
    redacted: bool
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
    #: The id of the key the digests were made with.
    digest_key: str
    #: ``dispatched_by_id``, ``operation_id``, ``redispatch_of_id`` of an operator dispatch.
    operator: dict[str, int | None] = attrs.Factory(dict)

    def header(self) -> TaskopsHeader:
        """The ``taskops`` message header: enough for the worker to judge staleness alone."""
        refs = tuple(HeaderRef(ref.label, ref.pk, ref.argument, ref.digests) for ref in self.refs)
        key_id = self.digest_key if refs else ""
        return TaskopsHeader(self.enqueued_at, self.in_transaction, refs, digest_key=key_id, redacted=self.redacted)

    def row(self) -> Row:
        """The ``Dispatch`` columns the publisher writes (every other one takes its default)."""
        return {
            "task_id": self.task_id,
            "task_name": clipped(self.task_name),
            "args": self.args,
            "kwargs": self.kwargs,
            "redacted": self.redacted,
            "queue": clipped(self.queue),
            "eta": self.eta,
            "expires": self.expires,
            "enqueued_at": self.enqueued_at,
            "retries": self.retries,
            "state": State.RETRY if self.retries else State.PENDING,
            "parent_id": clipped(self.parent_id),
            "root_id": clipped(self.root_id),
            "group_id": clipped(self.group_id),
            "in_transaction": self.in_transaction,
            "ref_count": len(self.refs),
            "source": Source.PUBLISHER,
            **operator_columns(self.operator),
        }

    def ref_rows(self) -> list[Row]:
        """The ``ObjectRef`` columns the publisher writes, one row per ref."""
        return [
            {
                **ref_key(ref.label, ref.pk, ref.argument),
                "object_repr": ref.text,
                "digests": ref.digests,
                "digest_key": self.digest_key,
                "values": ref.values,
            }
            for ref in self.refs
        ]


def fetch_rows(queryset: QuerySet[Any]) -> list[Any]:
    """The rows of a model QuerySet, evaluating it (one query) unless it was.

    Its own cache keeps them, as after ``list(queryset)`` (with its
    ``prefetch_related`` lookups, if it has any): the encoder, Celery's
    ``argsrepr`` and the snapshots then read the same rows, with no second
    query.
    """
    # Whole rows, not only pks: the snapshots need them (digests, str()), and a
    # ref without a snapshot could never be judged at start. Fetching pks now
    # and rows later would be two queries, and could see two different sets of
    # rows; the price of one is the width of the rows, in the same round trip.
    if queryset._result_cache is None:
        queryset._fetch_all()
    return list(queryset._result_cache or ())


def find_instances(value: Any, path: str, into: list[tuple[str, Any]], depth: int = 0) -> None:
    """Collect ``(argument path, instance or placeholder)`` for every model reference in ``value``.

    A model QuerySet is evaluated if it was not (:func:`fetch_rows`).
    """
    if depth > MAX_WALK_DEPTH:
        return
    if isinstance(value, Model | RefPlaceholder):
        into.append((path, value))
    elif isinstance(value, QuerySet):
        if issubclass(value._iterable_class, ModelIterable):  # .values() and .values_list() are plain data
            into.extend((f"{path}[{index}]", item) for index, item in enumerate(fetch_rows(value)))
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


def prepare_arguments(args: Any, kwargs: Any, task_id: Any = None) -> dict[str, str]:
    """Look at a task's arguments before Celery builds its message (the Task base calls it).

    Refuses an instance that cannot be sent (unsaved, or of a model not
    allowed) with :class:`~taskops.wire.CodecError`, here at the call: kombu
    would wrap the encoder's in its own ``EncodeError``. Evaluates the model
    QuerySets: Celery's ``argsrepr`` of an unevaluated one runs a query of
    its own; evaluated first, one query serves it, the snapshots and the
    encoder. Returns the ``argsrepr``/``kwargsrepr`` options the message must
    carry, if not Celery's own (:func:`~taskops.recording.redaction.message_reprs`).
    """
    found: list[tuple[str, Any]] = []
    find_instances(list(args or ()), "args", found)
    find_instances(dict(kwargs or {}), "kwargs", found)
    for _, item in found:
        if isinstance(item, Model):
            check_sendable(item)
    return message_reprs(task_id, args or (), kwargs or {})


def ref_records(found: list[tuple[str, Any]], keep_text: bool) -> list[RefRecord]:
    """A record per ref, snapshotted; ``keep_text``: keep ``str()`` and values (not for a redacted dispatch).

    Placeholders (decoded arguments a worker sends again) have no row in
    memory: theirs are fetched here, one query per model class, so that the
    task is judged against its rows as they were when it was enqueued.
    """
    placeholders = {item.ref for _, item in found if isinstance(item, RefPlaceholder)}
    fetched = resolve_refs(placeholders) if placeholders else {}
    key = snapshot.current_key()
    records = []
    for argument, item in found:
        if isinstance(item, RefPlaceholder):
            label, pk, instance = item.ref.label, item.ref.pk, fetched.get(item.ref)
        else:
            check_sendable(item)  # an unsaved instance: kombu's encoder refuses it at the call too
            label, pk, instance = item._meta.label_lower, json_pk(item.pk), item
        records.append(
            RefRecord(
                label=label,
                pk=pk,
                argument=argument[:ARGUMENT_CHARS],
                digests=snapshot.take(instance, key) if instance is not None else {},
                values=snapshot.values(instance) if instance is not None and keep_text else {},
                text=str(instance)[:REPR_CHARS] if instance is not None and keep_text else "",
                db=instance._state.db if instance is not None else None,
            )
        )
    return records


def message_arguments(body: Any) -> tuple[Any, Any]:
    """The positional and keyword arguments of a message body (task protocol 2, or 1), as Celery made them."""
    if isinstance(body, dict):  # task protocol 1
        return body.get("args") or (), body.get("kwargs") or {}
    return body[0], body[1]


def build_record(body: Any, headers: dict[str, Any], exchange: Any, routing_key: Any) -> DispatchRecord:
    """Everything the publisher records about one message; may rewrite the message's reprs in ``headers``.

    Raises :class:`~taskops.wire.CodecError` for an instance that cannot be sent.
    """
    args, kwargs = message_arguments(body)
    kept = kept_kwargs(kwargs)
    found: list[tuple[str, Any]] = []
    find_instances(list(args), "args", found)
    for key, item in kept.items():
        find_instances(item, f"kwargs.{key}", found)
    # After the walk: QuerySets are evaluated, so their repr costs no query.
    stored = publisher_arguments(args, kwargs, kept, headers)
    refs = ref_records(found, keep_text=not stored.redacted)
    databases = {ref.db for ref in refs if ref.db}
    return DispatchRecord(
        task_id=headers["id"],
        task_name=headers.get("task") or "",
        args=stored.args,
        kwargs=stored.kwargs,
        redacted=stored.redacted,
        queue=queue_of(str(routing_key or getattr(exchange, "name", exchange) or "")),
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
        digest_key=snapshot.current_key().id,
        operator=read_operator(headers.get(OPERATOR_HEADER)),
    )


#: Message header of operator dispatches: ``{"by": user id, "op": Redispatch id, "of": source Dispatch id}``.
OPERATOR_HEADER = "taskops_operator"
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


def operator_columns(operator: dict[str, int | None]) -> Row:
    """Every operator column, None where the dispatch was not an operator's."""
    return {column: operator.get(column) for column in OPERATOR_COLUMNS}


def ref_key(label: str, pk: Any, argument: str) -> Row:
    """The columns both sides write to name a ref: where it stood, which row it is."""
    return {"argument": argument, "content_type_id": content_type_for(label).pk, "object_pk": str(pk)}


def content_type_for(label: str) -> ContentType:
    """The content type of a model label (cached by Django after the first query)."""
    return ContentType.objects.get_for_model(ModelRef(label, None).model)
