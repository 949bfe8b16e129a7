"""Celery signal receivers that keep one ``Dispatch`` row per task id.

Publish side (``before_task_publish``): the arguments are still Python
objects, so the model instances among them are found and snapshotted in
memory (no query), and a ``taskops`` header carries what the worker needs to
judge staleness on its own (enqueue time, the in-transaction hazard, the refs
and their digests). The row and its ``ObjectRef`` rows are written behind
the caller's back: a daemon thread per process (:mod:`taskops.writebehind`)
writes them in batches, so ``delay()`` does not wait for the database;
:func:`flush` waits until it has. When the publisher is inside a
transaction, the record is handed over when that transaction commits (one
``on_commit`` per dispatch), never after a rollback. A worker that starts
before the row is written creates it from the headers, and the two writes
merge on ``task_id`` (``INSERT ... ON CONFLICT``), never clash: the
publisher's late write never touches the state the worker wrote.

Worker side: the start (lag, drift, policy) is written by the Task base
(:func:`record_start`, from ``check_staleness``), the end by ``task_postrun``;
the worker's main process writes revocations, rejections and lost workers.
Nothing is written in the main process for a task that runs at once (the
receive time travels to the pool child in the request), so the consumer loop
never waits on the database.

Eager mode (``task_always_eager``, ``.apply()``) is not recorded: nothing is
published, and a task run in-process is not a dispatch.

Recording never breaks a dispatch or a task: an error is logged and counted
in :data:`errors`; ``TASKOPS["STRICT"] = True`` raises it instead.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import attrs
from celery import signals as celery_signals
from celery._state import get_current_task
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Case, Field, JSONField, Model, QuerySet, Value, When
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from taskops import codec, snapshot, writebehind
from taskops.codec import AttrsPlaceholder, RefListPlaceholder, RefPlaceholder
from taskops.conf import taskops_settings
from taskops.models import Dispatch, ObjectRef, Source, State
from taskops.refs import ModelRef, json_pk
from taskops.signals import task_skipped

if TYPE_CHECKING:
    from taskops.staleness import StartVerdict

logger = logging.getLogger(__name__)

#: Name of the message header taskops adds.
HEADER = "taskops"
#: Request attribute carrying the worker's receive time to the pool child.
RECEIVED_KEY = "taskops_received"
#: How deep the argument walk goes looking for model instances.
MAX_WALK_DEPTH = 32

#: Recorder errors logged (not raised) in this process. Tests read it.
errors = 0
_errors_lock = threading.Lock()

#: Records the background writer takes in one batch (one write, one round trip on PostgreSQL).
WRITE_BATCH_SIZE = 500
#: Records waiting for the writer before a publisher writes its own at the call (backpressure).
WRITE_QUEUE_SIZE = 10_000
#: Seconds the writer waits for more records once it has one (flush() cuts it short).
WRITE_LINGER = 0.02
#: Seconds the interpreter's exit waits for the writer to write what is queued.
EXIT_FLUSH_TIMEOUT = 10.0

#: Fields the publisher owns when it merges into a row a worker created first.
#: ``state`` is not one of them: a late publisher write never moves it back.
#: ``source`` is: once the publisher's record has landed, the row is no longer
#: one the worker had to make up from the headers.
PUBLISHER_FIELDS = [
    "source",
    "task_name",
    "args",
    "kwargs",
    "queue",
    "eta",
    "expires",
    "enqueued_at",
    "parent_id",
    "root_id",
    "group_id",
    "in_transaction",
    "ref_count",
]
#: Fields a retry (same task id, published again) updates.
RETRY_FIELDS = ["args", "kwargs", "eta", "expires", "retries", "state"]
REF_PUBLISHER_FIELDS = ["content_type", "object_pk", "object_repr", "digests", "values"]
REF_WORKER_FIELDS = ["drift", "changed_fields", "likely_race", "checked_at"]


class StrictRecordingError(BaseException):
    """A recorder error under ``TASKOPS["STRICT"]``.

    A ``BaseException`` on purpose: Celery's signal dispatch logs and swallows
    every ``Exception`` a receiver raises, and STRICT means the caller (the
    code calling ``delay``) must see it.
    """


@contextmanager
def guarded(what: str, in_signal: bool = True) -> Iterator[None]:
    """Log and count a recorder error instead of breaking the caller (unless STRICT)."""
    try:
        yield
    except Exception as exc:
        if taskops_settings.STRICT:
            if in_signal:
                raise StrictRecordingError(f"taskops: recording failed while {what}: {exc!r}") from exc
            raise
        log_error(what)


def log_error(what: str) -> None:
    """Log the exception being handled and count it in :data:`errors` (from any thread)."""
    global errors
    with _errors_lock:
        errors += 1
    logger.exception("taskops: recording failed while %s", what)


def enabled() -> bool:
    return bool(taskops_settings.RECORDING)


# --- publish side --------------------------------------------------------------


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

    def header(self) -> dict[str, Any]:
        """The ``taskops`` message header: enough for the worker to judge staleness alone."""
        return {
            "v": 1,
            "enqueued_at": self.enqueued_at.isoformat(),
            "tx": self.in_transaction,
            "refs": [[ref.label, ref.pk, ref.argument, ref.digests] for ref in self.refs],
        }

    def columns(self) -> dict[str, Any]:
        """The ``Dispatch`` columns the publisher knows (every other one takes its default)."""
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
        }

    def dispatch(self) -> Dispatch:
        return Dispatch(**self.columns())


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
        return RefRecord(item.ref.label, item.ref.pk, argument[:255], {}, {}, "", None)
    return RefRecord(
        label=item._meta.label_lower,
        pk=json_pk(item.pk),
        argument=argument[:255],
        digests=snapshot.take(item),
        values=snapshot.values(item),
        text=str(item)[:200],
        db=item._state.db,
    )


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


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
        args=codec.dumps(list(args)),
        kwargs=codec.dumps(dict(kwargs)),
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
    )


_batch = threading.local()


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
        record = build_record(body, headers, exchange, routing_key)
        headers[HEADER] = record.header()
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
        transaction.on_commit(lambda: hand_over_guarded([record]), using=using)
    else:
        hand_over([record])


def hand_over_guarded(records: list[DispatchRecord]) -> None:
    with guarded("writing dispatches at commit"):
        hand_over(records)


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


_writer: writebehind.Writer[DispatchRecord] | None = None
_writer_lock = threading.Lock()
_exit_hook_pid: int | None = None


def current_writer() -> writebehind.Writer[DispatchRecord] | None:
    """This process's writer thread, started on first use (and again in a forked child)."""
    global _writer, _exit_hook_pid
    writer = _writer
    if writer is not None and writer.pid == os.getpid() and writer.is_running():
        return writer
    with _writer_lock:
        if _writer is None or _writer.pid != os.getpid() or not _writer.is_running():
            writer = writebehind.Writer(
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
    was logged and counted in :data:`errors`.
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
    except Exception:  # retried below, record by record
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


def write(records: list[DispatchRecord]) -> None:
    """Upsert dispatches and their refs: a row a worker created first is merged, not duplicated."""
    using = router.db_for_write(Dispatch)
    connection = connections[using]
    groups = upsert_groups(records)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One statement in autocommit per group: one round trip, however many records and refs.
        for chosen, update_fields in groups:
            pg_upsert(chosen, update_fields, using)
        return
    single_statement = len(records) == 1 and not records[0].refs
    # One statement needs no transaction of its own (autocommit: one round trip).
    with contextlib.nullcontext() if single_statement else transaction.atomic(using=using):
        for chosen, update_fields in groups:
            _upsert(chosen, update_fields, using)


def upsert_groups(records: list[DispatchRecord]) -> list[tuple[list[DispatchRecord], list[str]]]:
    """The records in upsert statements, in order: first publishes, then retries (they update other fields).

    A task id twice in a batch (a second publish under the same id) goes to
    a later statement: one ``INSERT ... ON CONFLICT`` cannot update a row
    twice, and the later publish must win, as it would written at the call.
    """
    groups: list[tuple[list[DispatchRecord], list[str]]] = []
    for retried in (False, True):
        rounds: list[tuple[list[DispatchRecord], set[str]]] = []
        for record in records:
            if bool(record.retries) is not retried:
                continue
            for chosen, ids in rounds:
                if record.task_id not in ids:
                    chosen.append(record)
                    ids.add(record.task_id)
                    break
            else:
                rounds.append(([record], {record.task_id}))
        groups += [(chosen, RETRY_FIELDS if retried else PUBLISHER_FIELDS) for chosen, _ in rounds]
    return groups


def _upsert(records: list[DispatchRecord], update_fields: list[str], using: str) -> None:
    rows = Dispatch.objects.using(using).bulk_create(
        [record.dispatch() for record in records],
        update_conflicts=True,
        unique_fields=["task_id"],
        update_fields=update_fields,
    )
    refs = [
        ObjectRef(
            dispatch_id=row.pk,
            content_type=content_type_for(ref.label),
            object_pk=str(ref.pk),
            argument=ref.argument,
            object_repr=ref.text,
            digests=ref.digests,
            values=ref.values,
        )
        for row, record in zip(rows, records, strict=True)
        for ref in record.refs
    ]
    upsert_refs(refs, REF_PUBLISHER_FIELDS, using)


def upsert_refs(refs: list[ObjectRef], update_fields: list[str], using: str) -> None:
    """Insert refs, or on (dispatch, argument) update only ``update_fields``: publisher and
    worker each own their columns of a ref, whichever writes first."""
    if refs:
        ObjectRef.objects.using(using).bulk_create(
            refs, update_conflicts=True, unique_fields=["dispatch", "argument"], update_fields=update_fields
        )


#: PostgreSQL, for the current transaction only: commit without waiting for the WAL
#: flush. A dispatch record lost to a server crash in the next fraction of a second
#: is recreated from the message headers by the worker; the user's own
#: transactions are never touched (this runs only in transactions taskops owns).
RELAXED_COMMIT_SQL = "set_config('synchronous_commit', 'off', true)"


@contextmanager
def own_transaction(using: str) -> Iterator[None]:
    """A transaction of taskops' own; on PostgreSQL its commit does not wait for the disk."""
    connection = connections[using]
    relaxed = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic(using=using):
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {RELAXED_COMMIT_SQL}")
        yield


def _columns(model: type[Model], names: list[str]) -> list[str]:
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field) or not field.column:
            raise TypeError(f"{model.__name__}.{name} is not a column")
        columns.append(field.column)
    return columns


def pg_upsert(records: list[DispatchRecord], update_fields: list[str], using: str) -> None:
    """PostgreSQL: dispatches and their refs upserted by one statement (a data-modifying CTE).

    The rows travel as one JSON document per table, unpacked by
    ``json_to_recordset``: the SQL text is the same for every batch, so
    neither the driver nor the server parses a statement with a placeholder
    per value (for 500 records, tens of thousands of them), and no model
    instance is built per record. Values the records do not set are the
    model fields' defaults, as ``bulk_create`` would write them.
    """
    dispatch_rows = [{**_json_defaults(Dispatch), **record.columns()} for record in records]
    ref_rows = [
        {
            **_json_defaults(ObjectRef),
            "task_id": record.task_id,
            "content_type_id": content_type_for(ref.label).pk,
            "object_pk": str(ref.pk),
            "argument": ref.argument,
            "object_repr": ref.text,
            "digests": ref.digests,
            "values": ref.values,
        }
        for record in records
        for ref in record.refs
    ]
    pg_upsert_rows(using, dispatch_rows, tuple(update_fields), ref_rows, tuple(REF_PUBLISHER_FIELDS))


def pg_upsert_rows(
    using: str,
    dispatch_rows: list[dict[str, Any]],
    update_fields: tuple[str, ...],
    ref_rows: list[dict[str, Any]],
    ref_update_fields: tuple[str, ...],
) -> None:
    """Upsert dispatch rows and their ref rows (each ref names its dispatch by ``task_id``) in one statement.

    On a conflict, only ``update_fields`` (``ref_update_fields``) are taken from the new row.
    """
    params = [_to_json(dispatch_rows)] + ([_to_json(ref_rows)] if ref_rows else [])
    sql = _pg_upsert_sql(using, update_fields, ref_update_fields if ref_rows else None)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def _to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_scalar, ensure_ascii=False, separators=(",", ":"))


def _json_scalar(value: Any) -> Any:
    """Datetimes as ISO 8601 (PostgreSQL reads them back with their offset), durations in seconds."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()} seconds"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """Every concrete field but the primary key: the columns an INSERT of taskops writes."""
    return [field for field in model._meta.concrete_fields if not field.primary_key]


@functools.cache
def _json_defaults(model: type[Model]) -> dict[str, Any]:
    """Column name -> default value, for the columns a publisher's record does not set."""
    return {str(field.column): field.get_default() for field in _insert_fields(model)}


@functools.cache
def _pg_upsert_sql(using: str, update_fields: tuple[str, ...], ref_update_fields: tuple[str, ...] | None) -> str:
    connection = connections[using]
    quote = connection.ops.quote_name

    def record_set(model: type[Model], extra: str = "") -> tuple[list[str], str]:
        fields = _insert_fields(model)
        columns = [quote(str(field.column)) for field in fields]
        types = [f"{column} {field.db_type(connection)}" for column, field in zip(columns, fields, strict=True)]
        return columns, f"json_to_recordset(%s::json) AS v({extra}{', '.join(types)})"

    def assignments(model: type[Model], names: list[str] | tuple[str, ...]) -> str:
        return ", ".join(f"{quote(column)} = EXCLUDED.{quote(column)}" for column in _columns(model, list(names)))

    columns, rows = record_set(Dispatch)
    sql = (
        f"WITH d AS (INSERT INTO {quote(Dispatch._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(columns)} FROM {rows} "
        f"ON CONFLICT ({quote('task_id')}) DO UPDATE SET {assignments(Dispatch, update_fields)} "
        "RETURNING id, task_id)"
    )
    if ref_update_fields is not None:
        # The refs name their dispatch by task id; the CTE turns it into the new (or merged) row's id.
        (dispatch_column,) = _columns(ObjectRef, ["dispatch"])
        ref_columns, ref_rows = record_set(ObjectRef, extra="task_id text, ")
        selected = ", ".join("d.id" if column == quote(dispatch_column) else f"v.{column}" for column in ref_columns)
        sql += (
            f", r AS (INSERT INTO {quote(ObjectRef._meta.db_table)} ({', '.join(ref_columns)}) "
            f"SELECT {selected} FROM {ref_rows} JOIN d ON d.task_id = v.task_id "
            f"ON CONFLICT ({quote(dispatch_column)}, {quote('argument')}) "
            f"DO UPDATE SET {assignments(ObjectRef, ref_update_fields)})"
        )
    # Evaluated inside the statement's own transaction: its commit does not wait for the WAL flush.
    return sql + f" SELECT {RELAXED_COMMIT_SQL}"


def content_type_for(label: str) -> ContentType:
    """The content type of a model label (cached by Django after the first query)."""
    return ContentType.objects.get_for_model(ModelRef(label, None).model)


# --- worker side ---------------------------------------------------------------


@attrs.define
class Attempt:
    """What this process knows about a task it is running, until ``task_postrun``."""

    started_at: dt.datetime
    started: float
    start_recorded: bool = False
    exception: str = ""
    skipped: str = ""


_attempts: dict[str, Attempt] = {}


def is_recorded_run(task: Any) -> bool:
    request = getattr(task, "request", None)
    return enabled() and request is not None and not request.is_eager and bool(request.id)


def header_of(request: Any) -> dict[str, Any] | None:
    value = getattr(request, HEADER, None)
    if value is None and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get(HEADER)
    return value if isinstance(value, dict) else None


def summarize(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def on_task_received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    if request is None or not enabled():
        return
    now = time.time()
    # The pool child writes it with the start: no database write in the consumer loop.
    request.request_dict[RECEIVED_KEY] = now
    if request.eta:  # it will wait for its ETA: make the wait visible now
        with guarded(f"recording the receipt of {request.id}"):
            autocommit_update(
                Dispatch.objects.using(router.db_for_write(Dispatch)).filter(
                    task_id=request.id, state__in=[State.PENDING, State.RETRY]
                ),
                {"state": State.RECEIVED, "received_at": dt.datetime.fromtimestamp(now, dt.UTC)},
            )


def on_task_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id and is_recorded_run(task):
        _attempts[task_id] = Attempt(started_at=timezone.now(), started=time.monotonic())


def record_start(task: Any, verdict: StartVerdict, stale_action: str = "") -> None:
    """Write the start of an attempt: times, worker, lag, drift per ref.

    PostgreSQL: one statement, an upsert of the dispatch and its refs that
    creates the row from the headers when the publisher's has not landed yet
    (committed without waiting for the WAL flush). Elsewhere: one UPDATE,
    and a second for the refs only when there are refs (then both in one
    transaction); no row yet, the worker creates it.
    """
    request = task.request
    attempt = _attempts.get(request.id)
    if attempt is not None:
        attempt.start_recorded = True
    received = getattr(request, RECEIVED_KEY, None)
    fields: dict[str, Any] = {
        "state": State.STARTED,
        "started_at": verdict.started_at,
        "worker": request.hostname or "",
        "lag": verdict.lag,
        "drift": verdict.drift,
        "likely_race": verdict.likely_race,
        "stale_action": stale_action,
    }
    if received:
        fields["received_at"] = dt.datetime.fromtimestamp(received, dt.UTC)
    using = router.db_for_write(Dispatch)
    if relaxed_autocommit(using):
        _pg_upsert_start(task, verdict, fields, using)
        return
    dispatch = Dispatch.objects.using(using).filter(task_id=request.id)
    refs = ObjectRef.objects.using(using).filter(dispatch__task_id=request.id)
    ref_fields = ref_drift_fields(verdict)
    if ref_fields:
        with transaction.atomic(using=using):
            updated = dispatch.update(**fields)
            refs.update(**ref_fields)
    else:
        updated = dispatch.update(**fields)
    if not updated:
        with own_transaction(using):
            _create_from_headers(task, verdict, fields, using)


def ref_drift_fields(verdict: StartVerdict) -> dict[str, Any]:
    """The UPDATE of a dispatch's refs at start, one CASE per column; nothing when there are no refs."""
    if not verdict.refs:
        return {}
    json_field = JSONField()
    odd = [ref for ref in verdict.refs if ref.drift != "unchanged"]
    return {
        "drift": Case(*(When(argument=r.argument, then=Value(r.drift)) for r in odd), default=Value("unchanged")),
        "changed_fields": Case(
            *(When(argument=r.argument, then=Value(r.changed_fields, output_field=json_field)) for r in odd),
            default=Value([], output_field=json_field),
            output_field=json_field,
        ),
        "likely_race": Case(*(When(argument=r.argument, then=Value(r.likely_race)) for r in odd), default=Value(False)),
        "checked_at": verdict.started_at,
    }


def relaxed_autocommit(using: str) -> bool:
    """PostgreSQL outside any transaction: a worker write can be one statement with a relaxed commit."""
    connection = connections[using]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def update_sql(queryset: QuerySet[Any], fields: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of ``queryset.update(**fields)``, without running it."""
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(fields)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, tuple(params)


def pg_update(using: str, *updates: tuple[QuerySet[Any], dict[str, Any]]) -> int:
    """PostgreSQL: run UPDATEs as one statement in autocommit; how many rows the first one updated.

    One round trip and no BEGIN/COMMIT pair; the statement's own commit does
    not wait for the WAL flush (see :data:`RELAXED_COMMIT_SQL`). The UPDATEs
    see the same snapshot, so none sees another's changes.
    """
    parts: list[str] = []
    params: list[Any] = []
    for index, (queryset, fields) in enumerate(updates):
        sql, part_params = update_sql(queryset, fields)
        parts.append(f"u{index} AS ({sql} RETURNING 1)")
        params.extend(part_params)
    with connections[using].cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT (SELECT count(*) FROM u0), {RELAXED_COMMIT_SQL}", params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def autocommit_update(queryset: QuerySet[Any], fields: dict[str, Any]) -> int:
    """``queryset.update(**fields)`` as the single statement of its transaction (relaxed on PostgreSQL)."""
    using = queryset.db
    if relaxed_autocommit(using):
        return pg_update(using, (queryset, fields))
    return queryset.update(**fields)


def worker_columns(task: Any, verdict: StartVerdict) -> dict[str, Any]:
    """The ``Dispatch`` columns a worker can fill from the message alone (no publisher's row)."""
    request = task.request
    header = header_of(request) or {}
    return {
        "task_id": request.id,
        "task_name": task.name,
        "args": codec.dumps(list(request.args or ())),
        "kwargs": codec.dumps(dict(request.kwargs or {})),
        "queue": (request.delivery_info or {}).get("routing_key") or "",
        "eta": parse_time(request.eta),
        "expires": parse_time(request.expires),
        "enqueued_at": parse_time(header.get("enqueued_at")) or verdict.started_at,
        "retries": request.retries or 0,
        "parent_id": request.parent_id or "",
        "root_id": request.root_id or "",
        "group_id": request.group or "",
        "in_transaction": bool(header.get("tx")),
        "ref_count": len(verdict.refs),
        "source": Source.WORKER,
    }


def _pg_upsert_start(task: Any, verdict: StartVerdict, fields: dict[str, Any], using: str) -> None:
    """PostgreSQL: the start as one upsert; on a conflict only the worker's columns are written.

    With the publisher writing in the background, its row is often not there
    yet when a fast worker starts: one statement either way, instead of an
    UPDATE that finds nothing followed by an insert.
    """
    row = {**_json_defaults(Dispatch), **worker_columns(task, verdict), **fields}
    for attempt in (1, 2):
        refs = [
            {
                **_json_defaults(ObjectRef),
                "task_id": task.request.id,
                "content_type_id": content_type_for(ref.label).pk,
                "object_pk": str(ref.pk),
                "argument": ref.argument,
                "digests": ref.digests,
                "drift": ref.drift,
                "changed_fields": ref.changed_fields,
                "likely_race": ref.likely_race,
                "checked_at": verdict.started_at,
            }
            for ref in verdict.refs
        ]
        try:
            pg_upsert_rows(using, [row], tuple(fields), refs, tuple(REF_WORKER_FIELDS))
            return
        except IntegrityError:
            if attempt == 2 or not refs:
                raise
            # A content type id this long-lived process cached may be gone (a
            # restored or re-created database): read them afresh, once.
            ContentType.objects.clear_cache()


def _create_from_headers(task: Any, verdict: StartVerdict, fields: dict[str, Any], using: str) -> None:
    """No row from the publisher (crashed, rolled back, or not committed yet): the worker writes it."""
    # A rare path here: read content types afresh, in case they were re-created
    # since this long-lived process cached them (a restored or re-created database).
    ContentType.objects.clear_cache()
    row = Dispatch(**worker_columns(task, verdict), **fields)
    (row,) = Dispatch.objects.using(using).bulk_create(
        [row], update_conflicts=True, unique_fields=["task_id"], update_fields=list(fields)
    )
    refs = [
        ObjectRef(
            dispatch_id=row.pk,
            content_type=content_type_for(ref.label),
            object_pk=str(ref.pk),
            argument=ref.argument,
            digests=ref.digests,
            drift=ref.drift,
            changed_fields=ref.changed_fields,
            likely_race=ref.likely_race,
            checked_at=verdict.started_at,
        )
        for ref in verdict.refs
    ]
    upsert_refs(refs, REF_WORKER_FIELDS, using)


def on_task_skipped(
    sender: Any = None, task: Any = None, task_id: str | None = None, reason: str = "", **kw: Any
) -> None:
    attempt = _attempts.get(task_id or "")
    if attempt is not None:
        attempt.skipped = reason or "skipped"


def on_task_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **kwargs: Any
) -> None:
    if not task_id or not enabled():
        return
    summary = summarize(exception) if exception is not None else "failed"
    attempt = _attempts.get(task_id)
    if attempt is not None:  # in the pool child: task_postrun writes it
        attempt.exception = summary
        return
    # The worker's main process: a lost pool child (WorkerLostError), a time limit.
    with guarded(f"recording the failure of {task_id}"):
        _finish(task_id, State.FAILURE, summary)


def on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    attempt = _attempts.get(getattr(request, "id", None) or "")
    if attempt is not None:
        attempt.exception = f"Retry: {reason}"[:2000]


def on_task_postrun(
    sender: Any = None, task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    attempt = _attempts.pop(task_id or "", None)
    if attempt is None or not task_id:
        return
    with guarded(f"recording the end of {task_id}"):
        if not attempt.start_recorded:
            # Stopped before check_staleness (a missing row and on_missing, a
            # codec error): judge what resolution found, then finish.
            from taskops import staleness

            verdict = getattr(task.request, staleness.VERDICT_KEY, None) or staleness.judge_start(
                task.request, {}, attempt.started_at
            )
            action = ("skip" if attempt.skipped else "fail") if verdict.drift == "missing" else ""
            record_start(task, verdict, action)
        runtime = dt.timedelta(seconds=time.monotonic() - attempt.started)
        if attempt.skipped:
            _finish(task_id, State.SKIPPED, attempt.skipped, runtime)
        elif state == State.RETRY:
            autocommit_update(
                Dispatch.objects.using(router.db_for_write(Dispatch)).filter(task_id=task_id, state=State.RETRY),
                {"exception": attempt.exception, "runtime": runtime},
            )
        else:
            _finish(task_id, state or State.SUCCESS, attempt.exception, runtime)


def _finish(task_id: str, state: str, exception: str = "", runtime: dt.timedelta | None = None) -> None:
    fields: dict[str, Any] = {"state": state, "finished_at": timezone.now(), "exception": exception}
    if runtime is not None:
        fields["runtime"] = runtime
    # One statement in autocommit: one round trip, no BEGIN/COMMIT pair.
    autocommit_update(Dispatch.objects.using(router.db_for_write(Dispatch)).filter(task_id=task_id), fields)


def on_task_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **kwargs: Any,
) -> None:
    task_id = getattr(request, "id", None)
    if not task_id or not enabled():
        return
    reason = "expired" if expired else (f"terminated (signal {signum})" if terminated else "revoked")
    with guarded(f"recording the revocation of {task_id}"):
        autocommit_update(
            Dispatch.objects.using(router.db_for_write(Dispatch))
            .filter(task_id=task_id)
            .exclude(state__in=[State.SUCCESS, State.FAILURE]),
            {"state": State.REVOKED, "finished_at": timezone.now(), "exception": reason},
        )


def on_task_rejected(sender: Any = None, message: Any = None, exc: Any = None, **kwargs: Any) -> None:
    task_id = (getattr(message, "headers", None) or {}).get("id")
    if task_id and enabled():
        with guarded(f"recording the rejection of {task_id}"):
            _finish(task_id, State.REJECTED, f"rejected: {exc!r}" if exc else "rejected")


def on_task_unknown(
    sender: Any = None, name: str | None = None, id: str | None = None, exc: Any = None, **kwargs: Any
) -> None:
    if id and enabled():
        with guarded(f"recording the unknown task {id}"):
            _finish(id, State.REJECTED, f"unknown task {name!r}")


_RECEIVERS = (
    (celery_signals.before_task_publish, on_before_task_publish),
    (celery_signals.task_received, on_task_received),
    (celery_signals.task_prerun, on_task_prerun),
    (celery_signals.task_postrun, on_task_postrun),
    (celery_signals.task_failure, on_task_failure),
    (celery_signals.task_retry, on_task_retry),
    (celery_signals.task_revoked, on_task_revoked),
    (celery_signals.task_rejected, on_task_rejected),
    (celery_signals.task_unknown, on_task_unknown),
)


def connect() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"taskops.recording.{receiver.__name__}")
    task_skipped.connect(on_task_skipped, weak=False, dispatch_uid="taskops.recording.on_task_skipped")
