"""One declaration of who writes which column; the row builders follow it; the state never moves back."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db.models import Model
from django.utils import timezone

from taskops.models import FINISHED_STATES, State
from taskops.recording.columns import DECLARED, DISPATCH, REF, Ownership, Progress, Side
from taskops.recording.records import build_record
from taskops.recording.worker import finish_fields, received_fields, start_fields
from taskops.recording.worker_rows import MessageFacts, header_ref_rows, start_ref_rows, worker_row
from taskops.staleness import judge_start
from taskops.wire import HEADER, ModelRef
from tests.testapp.models import Book


@pytest.mark.parametrize(("model", "ownership"), DECLARED)
def test_every_column_is_declared(model: type[Model], ownership: Ownership) -> None:
    columns = {field.attname for field in model._meta.concrete_fields if not field.primary_key}
    assert ownership.all() == columns
    # A column the publisher owns is never taken from a worker's write, and the reverse.
    worker = {*ownership.start, *ownership.received, *ownership.finish}
    assert not set(ownership.publisher) & worker


@pytest.mark.django_db
def test_the_builders_write_what_their_side_owns() -> None:
    book = Book.objects.create(title="t")
    record = build_record(([book], {}, {}), {"id": "columns-test", "task": "t"}, "", "q")
    header = record.header()
    verdict = judge_start(header, {ModelRef("testapp.book", book.pk): book}, timezone.now())
    facts = MessageFacts("columns-test", "t", headers={HEADER: header.to_message()})
    from_headers = worker_row(facts, timezone.now())
    ref_columns = {"argument", "content_type_id", "object_pk", "digests", "digest_key"}

    # The publisher's row: the key, its own columns, and the state and retries its insert starts with.
    assert set(record.row()) == {*DISPATCH.key, *DISPATCH.publisher, "state", "retries"}
    assert set(record.ref_rows()[0]) == {*REF.key, *REF.publisher} - {"dispatch_id"}
    # The worker's row from the message: what the publisher's would hold, marked as the worker's.
    assert set(from_headers) == set(record.row()) - {"state"}
    assert set(header_ref_rows(header)[0]) == ref_columns
    assert set(start_ref_rows(verdict, header)[0]) == {*ref_columns, *REF.start}


def test_the_worker_writes_what_its_side_owns() -> None:
    now = timezone.now()
    verdict = judge_start(None, {}, now)
    # Every column each write may set (the optional ones given): exactly what the declaration says it owns.
    start = start_fields(verdict, "run", "w1@host", received=time.time(), notes=["a note"])
    assert set(start) == set(DISPATCH.start)
    assert set(received_fields(now, "w1@host")) == set(DISPATCH.received)
    assert set(finish_fields(State.SUCCESS, now, "", runtime=dt.timedelta(seconds=1))) == set(DISPATCH.finish)
    # Without the optional ones: a subset, never another column.
    assert set(start_fields(verdict, "", "", received=None, notes=[])) < set(DISPATCH.start)
    assert set(finish_fields(State.FAILURE, now, "boom")) < set(DISPATCH.finish)


@pytest.mark.parametrize(
    ("side", "column"),
    [("start", "finished_at"), ("received", "started_at"), ("finish", "args"), ("start", "enqueued_at")],
)
def test_a_write_of_a_column_its_side_does_not_own_is_refused(side: Side, column: str) -> None:
    with pytest.raises(ValueError, match=f"the {side} write does not own the column\\(s\\) {column}"):
        DISPATCH.written_by(side, {"state": State.STARTED, column: None})


NOT_FINISHED = [State.PENDING, State.RECEIVED, State.RETRY, State.STARTED]


@pytest.mark.parametrize(
    ("state", "replaces"),
    [
        (State.RECEIVED, [State.PENDING, State.RECEIVED, State.RETRY]),  # never a started or finished row
        (State.STARTED, NOT_FINISHED),
        *((state, NOT_FINISHED) for state in sorted(FINISHED_STATES)),  # a finished state is final
        ("PROGRESS", NOT_FINISHED),  # a state of the task's own making counts as an end
    ],
)
def test_a_worker_write_takes_a_row_only_forward(state: str, replaces: list[State]) -> None:
    assert Progress(state, 0).replaceable_states() == sorted(replaces)


def test_a_newer_attempt_takes_over_any_older_row() -> None:
    known, unknown = Progress(State.STARTED, 2), Progress(State.FAILURE, None)
    # Rows with fewer retries are an older attempt; an unknown attempt goes by state alone.
    assert (known.older_than(), known.same_attempt_up_to()) == (2, 2)
    assert unknown.older_than() == -1
    assert unknown.same_attempt_up_to() >= 2**31 - 1
