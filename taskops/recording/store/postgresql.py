"""The PostgreSQL store: every write one statement in autocommit.

A worker's write is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``: the
row is created from the message when it is not there, and otherwise taken
forward only if it may be (:class:`~taskops.recording.columns.Progress`).

Rows travel as one JSON document per table, unpacked by
``json_to_recordset``: the SQL text is the same for every batch, so neither
the driver nor the server parses a statement with a placeholder per value,
and no model instance is built per record. Each statement commits without
waiting for the WAL flush (``synchronous_commit`` off for that transaction
only): a record lost to a server crash in the next fraction of a second is
recreated from the message headers by the worker; the user's own
transactions are never touched. Inside a caller's transaction, the generic
store's ORM writes are used instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any, cast

from django.db import connections
from django.db.models import Field, Model, QuerySet
from django.db.models.sql import UpdateQuery

from taskops.models import Dispatch, ObjectRef
from taskops.recording.records import DispatchRecord, Row
from taskops.recording.store.generic import GenericStore, Upsert, publisher_upserts, upsert_worker_write
from taskops.recording.worker_rows import WorkerWrite

#: For the current transaction only: commit without waiting for the WAL flush.
RELAXED_COMMIT_SQL = "set_config('synchronous_commit', 'off', true)"


class PostgreSQLStore(GenericStore):
    """One statement per write; the generic store's writes inside a caller's transaction."""

    def write(self, records: list[DispatchRecord], using: str) -> None:
        if connections[using].in_atomic_block:
            super().write(records, using)
            return
        for upsert in publisher_upserts(records):
            upsert_rows(using, upsert)

    def advance(self, write: WorkerWrite, using: str) -> None:
        """A worker's write as one upsert; on a conflict its columns are written only where it may.

        With the publisher writing in the background, its row is often not
        there yet when a fast worker writes: one statement either way.
        """
        if connections[using].in_atomic_block:
            super().advance(write, using)
            return
        upsert_worker_write(write, lambda upsert: upsert_rows(using, upsert))

    def update(self, queryset: QuerySet[Any], fields: Row) -> int:
        """The UPDATE as one statement in autocommit (no BEGIN/COMMIT pair), relaxed commit."""
        using = queryset.db
        if connections[using].in_atomic_block:
            return super().update(queryset, fields)
        sql, params = update_sql(queryset, fields)
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"WITH u AS ({sql} RETURNING 1) SELECT (SELECT count(*) FROM u), {RELAXED_COMMIT_SQL}", params
            )
            result = cursor.fetchone()
        return int(result[0]) if result else 0


def update_sql(queryset: QuerySet[Any], fields: Row) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of ``queryset.update(**fields)``, without running it."""
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(fields)
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, tuple(params)


def upsert_rows(using: str, upsert: Upsert) -> None:
    """Run ``upsert`` as one statement.

    Columns a row does not set take the model field's default, as
    ``bulk_create`` would write it.
    """
    dispatches = [{**json_defaults(Dispatch), **row} for row in upsert.dispatch_rows]
    # "position": the refs' ids follow their order in the arguments, as the generic store's do.
    refs = [{**json_defaults(ObjectRef), **row, "position": index} for index, row in enumerate(upsert.ref_rows)]
    params: list[Any] = [to_json(dispatches)]
    progress = upsert.progress
    if progress is not None:
        params += [progress.older_than(), progress.same_attempt_up_to(), progress.replaceable_states()]
    params += [to_json(refs)] if refs else []
    sql = upsert_sql(using, upsert.update_fields, upsert.ref_update_fields if refs else None, progress is not None)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def to_json(rows: list[Row]) -> str:
    return json.dumps(rows, default=_json_scalar, ensure_ascii=False, separators=(",", ":"))


def _json_scalar(value: Any) -> Any:
    """Datetimes as ISO 8601 (PostgreSQL reads them back with their offset), durations in seconds."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()} seconds"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """Every concrete field but the primary key: the columns an INSERT of taskops writes."""
    return [field for field in model._meta.concrete_fields if not field.primary_key]


@functools.cache
def json_defaults(model: type[Model]) -> Row:
    """Column name -> default value, for the columns a row does not set."""
    return {str(field.column): field.get_default() for field in insert_fields(model)}


def _columns(model: type[Model], names: tuple[str, ...]) -> list[str]:
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field) or not field.column:
            raise TypeError(f"{model.__name__}.{name} is not a column")
        columns.append(field.column)
    return columns


@functools.cache
def upsert_sql(
    using: str, update_fields: tuple[str, ...], ref_update_fields: tuple[str, ...] | None, guarded: bool = False
) -> str:
    connection = connections[using]
    quote = connection.ops.quote_name

    def record_set(model: type[Model], extra: str = "") -> tuple[list[str], str]:
        fields = insert_fields(model)
        columns = [quote(str(field.column)) for field in fields]
        types = [f"{column} {field.db_type(connection)}" for column, field in zip(columns, fields, strict=True)]
        return columns, f"json_to_recordset(%s::json) AS v({extra}{', '.join(types)})"

    def assignments(model: type[Model], names: tuple[str, ...]) -> str:
        return ", ".join(f"{quote(column)} = EXCLUDED.{quote(column)}" for column in _columns(model, names))

    columns, rows = record_set(Dispatch)
    table = quote(Dispatch._meta.db_table)
    # Only rows the write may take forward: an older attempt, or the same one not as far on.
    retries, state = (f"{table}.{quote(column)}" for column in _columns(Dispatch, ("retries", "state")))
    forward = f" WHERE {retries} < %s OR ({retries} <= %s AND {state} = ANY(%s))" if guarded else ""
    sql = (
        f"WITH d AS (INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join(columns)} FROM {rows} "
        f"ON CONFLICT ({quote('task_id')}) DO UPDATE SET {assignments(Dispatch, update_fields)}{forward} "
        "RETURNING id, task_id)"
    )
    if ref_update_fields is not None:
        # The refs name their dispatch by task id; the CTE turns it into the new (or merged) row's id.
        (dispatch_column,) = _columns(ObjectRef, ("dispatch",))
        ref_columns, ref_rows = record_set(ObjectRef, extra="task_id text, position int, ")
        selected = ", ".join("d.id" if column == quote(dispatch_column) else f"v.{column}" for column in ref_columns)
        sql += (
            f", r AS (INSERT INTO {quote(ObjectRef._meta.db_table)} ({', '.join(ref_columns)}) "
            f"SELECT {selected} FROM {ref_rows} JOIN d ON d.task_id = v.task_id ORDER BY v.position "
            f"ON CONFLICT ({quote(dispatch_column)}, {quote('argument')}) "
            + (f"DO UPDATE SET {assignments(ObjectRef, ref_update_fields)})" if ref_update_fields else "DO NOTHING)")
        )
    # Evaluated inside the statement's own transaction: its commit does not wait for the WAL flush.
    return sql + f" SELECT {RELAXED_COMMIT_SQL}"
