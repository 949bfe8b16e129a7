"""The SQLite store: a batch as a few statements over JSON, in one transaction.

The generic store's ORM upserts cost a model instance and a compiled
statement per record, in the writer thread of the publishing process, which
takes the interpreter's lock from the code that publishes. Here, as on
PostgreSQL, the rows travel as one JSON document per table, unpacked by
``json_each``: the SQL text is the same for every batch, so SQLite keeps it
prepared (Python's ``sqlite3`` caches statements per connection). A
worker's write is one upsert that takes the row forward only where it may
(:class:`~taskops.recording.columns.Progress`), and its refs only with it.
Inside a caller's transaction, and for anything else, the generic store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from typing import Any

from django.db import connections, transaction
from django.db.models import Model
from django.utils.duration import duration_microseconds

from taskops.models import Dispatch, ObjectRef
from taskops.recording.records import DispatchRecord, Row
from taskops.recording.store.generic import GenericStore, Upsert, publisher_upserts, upsert_worker_write
from taskops.recording.store.postgresql import _columns, insert_fields, json_defaults
from taskops.recording.worker_rows import WorkerWrite


class SQLiteStore(GenericStore):
    """A batch in one transaction of two statements per upsert group; a worker's write in one of two."""

    def write(self, records: list[DispatchRecord], using: str) -> None:
        if connections[using].in_atomic_block:
            super().write(records, using)
            return
        with transaction.atomic(using=using):
            for upsert in publisher_upserts(records):
                upsert_rows(using, upsert)

    def advance(self, write: WorkerWrite, using: str) -> None:
        if connections[using].in_atomic_block:
            super().advance(write, using)
            return

        def run(upsert: Upsert) -> None:
            # One statement without refs: autocommit, no transaction around it.
            with transaction.atomic(using=using) if upsert.ref_rows else contextlib.nullcontext():
                upsert_rows(using, upsert)

        upsert_worker_write(write, run)


def upsert_rows(using: str, upsert: Upsert) -> None:
    """As :func:`taskops.recording.store.postgresql.upsert_rows`, two statements in the caller's transaction."""
    connection = connections[using]
    dispatches = [{**json_defaults(Dispatch), **row} for row in upsert.dispatch_rows]
    params: list[Any] = [to_json(connection, dispatches)]
    progress = upsert.progress
    states = progress.replaceable_states() if progress is not None else []
    if progress is not None:
        params += [progress.older_than(), progress.same_attempt_up_to(), *states]
    dispatch_sql, ref_sql = upsert_sql(
        using, upsert.update_fields, upsert.ref_update_fields, progress is not None, len(states)
    )
    with connection.cursor() as cursor:
        cursor.execute(dispatch_sql, params)
        # A guarded write that took nothing forward leaves the refs alone too.
        if upsert.ref_rows and (progress is None or cursor.rowcount > 0):
            refs = [{**json_defaults(ObjectRef), **row, "position": index} for index, row in enumerate(upsert.ref_rows)]
            cursor.execute(ref_sql, [to_json(connection, refs)])


def to_json(connection: Any, rows: list[Row]) -> str:
    def scalar(value: Any) -> Any:
        """Datetimes and durations as Django's SQLite backend stores them (UTC text, microseconds)."""
        if isinstance(value, dt.datetime):
            return connection.ops.adapt_datetimefield_value(value)
        if isinstance(value, dt.timedelta):
            return duration_microseconds(value)
        if isinstance(value, dt.date | dt.time):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(rows, default=scalar, ensure_ascii=False, separators=(",", ":"))


@functools.cache
def upsert_sql(
    using: str, update_fields: tuple[str, ...], ref_update_fields: tuple[str, ...], guarded: bool, states: int
) -> tuple[str, str]:
    """The dispatches' upsert (guarded: only rows it may take forward) and the refs' upsert."""
    quote = connections[using].ops.quote_name

    def selected(model: type[Model], row: str = "value") -> tuple[list[str], list[str]]:
        columns = [str(field.column) for field in insert_fields(model)]
        return [quote(c) for c in columns], [f"json_extract({row}, '$.{c}')" for c in columns]

    def assignments(model: type[Model], names: tuple[str, ...]) -> str:
        return ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _columns(model, names))

    table = quote(Dispatch._meta.db_table)
    columns, values = selected(Dispatch)
    retries, state = (f"{table}.{quote(c)}" for c in _columns(Dispatch, ("retries", "state")))
    forward = (
        f" WHERE {retries} < %s OR ({retries} <= %s AND {state} IN ({', '.join(['%s'] * states)}))" if guarded else ""
    )
    # "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
    dispatch_sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM json_each(%s) WHERE true "
        f"ON CONFLICT ({quote('task_id')}) DO UPDATE SET {assignments(Dispatch, update_fields)}{forward}"
    )
    (dispatch_column,) = _columns(ObjectRef, ("dispatch",))
    ref_columns, ref_values = selected(ObjectRef, "v.value")
    picked = [
        "d.id" if column == quote(dispatch_column) else value
        for column, value in zip(ref_columns, ref_values, strict=True)
    ]
    conflict = f"DO UPDATE SET {assignments(ObjectRef, ref_update_fields)}" if ref_update_fields else "DO NOTHING"
    ref_sql = (
        f"INSERT INTO {quote(ObjectRef._meta.db_table)} ({', '.join(ref_columns)}) "
        f"SELECT {', '.join(picked)} FROM json_each(%s) AS v JOIN {table} AS d "
        f"ON d.{quote('task_id')} = json_extract(v.value, '$.task_id') WHERE true "
        f"ORDER BY json_extract(v.value, '$.position') "
        f"ON CONFLICT ({quote(dispatch_column)}, {quote('argument')}) {conflict}"
    )
    return dispatch_sql, ref_sql
