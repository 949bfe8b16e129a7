"""The store for any database Django supports: the ORM's upserts.

A publisher's batch: one ``INSERT ... ON CONFLICT`` for the dispatches and
one for their refs, in one transaction (a single statement needs none).
A worker's write (:meth:`GenericStore.advance`): one UPDATE that takes only
rows it may take forward (two with the start's refs, in one transaction);
when it took none and no row is there yet, an INSERT creates the row from
the message, and if another write's row landed in between, the UPDATE runs
once more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Case, JSONField, Q, QuerySet, Value, When

from taskops.models import Dispatch, Drift, ObjectRef
from taskops.recording.columns import DISPATCH, REF, Progress
from taskops.recording.records import DispatchRecord, Row
from taskops.recording.worker_rows import WorkerWrite


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


@attrs.frozen
class Upsert:
    """One upsert of dispatch rows and their ref rows (each ref names its dispatch by ``task_id``).

    On a conflict, only ``update_fields`` (``ref_update_fields``; none: the
    ref is left as it is) are taken from the new row, and with ``progress``
    only where the row may be taken forward (refs only with their dispatch).
    """

    dispatch_rows: list[Row]
    update_fields: tuple[str, ...]
    ref_rows: list[Row]
    ref_update_fields: tuple[str, ...]
    progress: Progress | None = None


def publisher_upserts(records: list[DispatchRecord]) -> list[Upsert]:
    """The publisher's records as upserts (:func:`upsert_groups`), their refs naming their dispatch by ``task_id``."""
    return [
        Upsert(
            [record.row() for record in chosen],
            update_fields,
            [{**ref, "task_id": record.task_id} for record in chosen for ref in record.ref_rows()],
            REF.publisher,
        )
        for chosen, update_fields in upsert_groups(records)
    ]


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

    def advance(self, write: WorkerWrite, using: str) -> None:
        """A worker's write: the row taken forward if it may be, created from the message if it is not there."""
        if self.take_forward(write, using):
            return
        # Nothing taken: the row is further on (nothing to do), or not there yet.
        # A rare path: read content types afresh, in case they were re-created
        # since this long-lived process cached them (a restored database).
        ContentType.objects.clear_cache()
        try:
            with transaction.atomic(using=using):
                row = Dispatch.objects.using(using).create(**{**write.make_row(), **write.fields})
                ObjectRef.objects.using(using).bulk_create(
                    [ObjectRef(dispatch=row, **ref) for ref in write.make_refs()]
                )
        except IntegrityError:
            # Another write's row landed in between (the publisher's): take it forward, if it may be.
            if not self.take_forward(write, using) and not Dispatch.objects.using(using).filter(task_id=write.task_id):
                raise  # no row landed: the insert itself was refused

    def take_forward(self, write: WorkerWrite, using: str) -> bool:
        """Update the row if it is there and may be taken forward; whether it was."""
        dispatch = Dispatch.objects.using(using).filter(forward_of(write.progress), task_id=write.task_id)
        ref_rows = write.make_refs() if write.ref_fields else []
        if not ref_rows:
            return bool(self.update(dispatch, write.fields))
        with transaction.atomic(using=using):
            if not dispatch.update(**write.fields):
                return False
            refs = ObjectRef.objects.using(using).filter(dispatch__task_id=write.task_id)
            if refs.update(**drift_update(ref_rows)) < len(ref_rows):
                # The row was made without some of these refs (no header): add them.
                (dispatch_id,) = (
                    Dispatch.objects.using(using).filter(task_id=write.task_id).values_list("pk", flat=True)
                )
                upsert_refs([(dispatch_id, ref) for ref in ref_rows], write.ref_fields, using)
        return True

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


def forward_of(progress: Progress) -> Q:
    """The rows a write may take over (:class:`~taskops.recording.columns.Progress`)."""
    return Q(retries__lt=progress.older_than()) | Q(
        retries__lte=progress.same_attempt_up_to(), state__in=progress.replaceable_states()
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


def upsert_worker_write(write: WorkerWrite, upsert: Callable[[Upsert], None]) -> None:
    """``upsert`` of a worker's write (one row), its refs naming the dispatch by ``task_id``.

    On an ``IntegrityError`` with refs it is tried once more, after reading
    content types afresh: an id this long-lived process cached may be gone
    (a restored or re-created database).
    """
    row = {**write.make_row(), **write.fields}
    for attempt in (1, 2):
        refs = [{**ref, "task_id": write.task_id} for ref in write.make_refs()]
        try:
            upsert(Upsert([row], tuple(write.fields), refs, write.ref_fields, write.progress))
            return
        except IntegrityError:
            if attempt == 2 or not refs:
                raise
            ContentType.objects.clear_cache()
