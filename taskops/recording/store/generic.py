"""The store for any database Django supports: the ORM's upserts.

A publisher's batch: one ``INSERT ... ON CONFLICT`` for the dispatches and
one for their refs, in one transaction (a single statement needs none).
A worker's start: one UPDATE (two with refs, in one transaction); when no
row is there yet, an upsert creates it from the message headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Case, JSONField, QuerySet, Value, When

from taskops.models import Dispatch, Drift, ObjectRef
from taskops.recording.columns import DISPATCH, REF
from taskops.recording.records import DispatchRecord, Row


def upsert_groups(records: list[DispatchRecord]) -> list[tuple[list[DispatchRecord], tuple[str, ...]]]:
    """The records in upsert statements, in order: first publishes, then retries (they update other fields).

    A task id twice in a batch (a second publish under the same id) goes to
    a later statement: one ``INSERT ... ON CONFLICT`` cannot update a row
    twice, and the later publish must win, as it would written at the call.
    """
    groups: list[tuple[list[DispatchRecord], tuple[str, ...]]] = []
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
        groups += [(chosen, DISPATCH.retry if retried else DISPATCH.publisher) for chosen, _ in rounds]
    return groups


class GenericStore:
    """Writes through the ORM; works on every database and inside any transaction."""

    def write(self, records: list[DispatchRecord], using: str) -> None:
        """Upsert dispatches and their refs: a row a worker created first is merged, not duplicated."""
        single_statement = len(records) == 1 and not records[0].refs
        # One statement needs no transaction of its own (autocommit: one round trip).
        with contextlib.nullcontext() if single_statement else transaction.atomic(using=using):
            for chosen, update_fields in upsert_groups(records):
                rows = upsert_dispatches([record.row() for record in chosen], update_fields, using)
                refs = [(row.pk, ref) for row, record in zip(rows, chosen, strict=True) for ref in record.ref_rows()]
                upsert_refs(refs, REF.publisher, using)

    def start(
        self, task_id: str, fields: Row, make_row: Callable[[], Row], make_refs: Callable[[], list[Row]], using: str
    ) -> None:
        """Write an attempt's start; create the row from the headers when the publisher's is not there.

        ``make_row`` and ``make_refs`` build the worker's rows (see
        :mod:`taskops.recording.records`), called only when needed.
        """
        ref_rows = make_refs()
        dispatch = Dispatch.objects.using(using).filter(task_id=task_id)
        refs = ObjectRef.objects.using(using).filter(dispatch__task_id=task_id)
        if ref_rows:
            with transaction.atomic(using=using):
                updated = dispatch.update(**fields)
                refs.update(**drift_update(ref_rows))
        else:
            updated = dispatch.update(**fields)
        if updated:
            return
        # A rare path: read content types afresh, in case they were re-created
        # since this long-lived process cached them (a restored database).
        ContentType.objects.clear_cache()
        with transaction.atomic(using=using):
            (row,) = upsert_dispatches([{**make_row(), **fields}], tuple(fields), using)
            upsert_refs([(row.pk, ref) for ref in make_refs()], REF.start, using)

    def update(self, queryset: QuerySet[Any], fields: Row) -> int:
        """``queryset.update(**fields)`` as the single statement of its transaction."""
        return queryset.update(**fields)


def upsert_dispatches(rows: list[Row], update_fields: tuple[str, ...], using: str) -> list[Dispatch]:
    """Insert dispatch rows, or on ``task_id`` update only ``update_fields``; the rows with their ids."""
    return Dispatch.objects.using(using).bulk_create(
        [Dispatch(**row) for row in rows],
        update_conflicts=True,
        unique_fields=DISPATCH.key,
        update_fields=update_fields,
    )


def upsert_refs(refs: list[tuple[int, Row]], update_fields: tuple[str, ...], using: str) -> None:
    """Insert ``(dispatch id, ref row)`` pairs, or on (dispatch, argument) update only ``update_fields``."""
    if refs:
        ObjectRef.objects.using(using).bulk_create(
            [ObjectRef(dispatch_id=dispatch_id, **row) for dispatch_id, row in refs],
            update_conflicts=True,
            unique_fields=REF.key,
            update_fields=update_fields,
        )


def drift_update(ref_rows: list[Row]) -> Row:
    """The UPDATE of a dispatch's refs at start, one CASE per column (by argument)."""
    json_field = JSONField()
    odd = [row for row in ref_rows if row["drift"] != Drift.UNCHANGED]

    def case(column: str, default: Any, **output: Any) -> Case:
        whens = [When(argument=row["argument"], then=Value(row[column], **output)) for row in odd]
        return Case(*whens, default=Value(default, **output), **output)

    return {
        "drift": case("drift", Drift.UNCHANGED),
        "changed_fields": case("changed_fields", [], output_field=json_field),
        "likely_race": case("likely_race", False),
        "checked_at": ref_rows[0]["checked_at"],
    }
