"""A worker's writes through the store: whichever comes first lands, and the state never moves back.

Each test runs twice: in autocommit (on PostgreSQL, the one-statement upsert)
and inside a transaction (the ORM's writes, as on every other database).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from taskops.models import Dispatch, Drift, Source, State
from taskops.recording import background, records
from taskops.recording import worker as worker_side
from taskops.recording.columns import Progress
from taskops.recording.worker_rows import MessageFacts, WorkerWrite, worker_row
from taskops.staleness import snapshot
from taskops.wire import HEADER, HeaderRef, TaskopsHeader
from tests.recording.conftest import IDLE
from tests.testapp.models import Book
from tests.testapp.tasks import add


@pytest.fixture(params=["autocommit", "in a transaction"])
def writes(request: pytest.FixtureRequest, content_types: None) -> Any:
    """Run a block of writes in autocommit, or inside a caller's transaction."""

    @contextlib.contextmanager
    def block() -> Iterator[None]:
        with transaction.atomic() if request.param == "in a transaction" else contextlib.nullcontext():
            yield

    return block


def facts(task_id: str, retries: int = 0, headers: dict[str, Any] | None = None) -> MessageFacts:
    return MessageFacts(task_id, add.name, headers={"retries": retries, **(headers or {})}, args=(1, 2), queue=IDLE)


def write(task_id: str, state: State, retries: int | None = 0, **fields: Any) -> None:
    """One worker write of ``state`` (``retries`` None: the attempt is not known)."""
    now = timezone.now()
    message = facts(task_id, retries or 0)
    progress = Progress(state, retries)
    worker_side.advance(
        WorkerWrite(task_id, {"state": state, **fields}, progress, lambda: worker_row(message, now), lambda: [])
    )


def state_of(task_id: str) -> tuple[str, int]:
    row = Dispatch.objects.get(task_id=task_id)
    return row.state, row.retries


def test_the_first_write_creates_the_row_from_the_message(writes: Any) -> None:
    book = Book.objects.create(title="b")
    header = TaskopsHeader(
        timezone.now(),
        False,
        (HeaderRef("testapp.book", book.pk, "args[0]", snapshot.take(book)),),
        digest_key=snapshot.current_key().id,
    )
    with writes():
        worker_side.finish(facts("first", headers={HEADER: header.to_message()}), State.REJECTED, "unknown task 'x'")

    row = Dispatch.objects.get(task_id="first")
    ref = row.refs.get()
    assert (row.source, row.state, row.exception, row.args, row.queue) == (
        Source.WORKER,
        State.REJECTED,
        "unknown task 'x'",
        "[1, 2]",
        IDLE,
    )
    assert row.enqueued_at == header.enqueued_at
    assert row.finished_at is not None
    assert (ref.object_pk, ref.argument, ref.drift) == (str(book.pk), "args[0]", Drift.PENDING)
    assert (ref.digests, ref.digest_key) == (snapshot.take(book), snapshot.current_key().id)


def test_a_late_write_never_moves_the_state_back(writes: Any) -> None:
    with writes():
        write("t", State.STARTED)
        write("t", State.RECEIVED, received_at=timezone.now())  # the receipt, late
    row = Dispatch.objects.get(task_id="t")
    assert (row.state, row.received_at) == (State.STARTED, None)

    with writes():
        write("t", State.SUCCESS, exception="")
        for late in (State.REVOKED, State.FAILURE, State.STARTED, State.RECEIVED):
            write("t", late, exception="late")
        write("t", State.FAILURE, retries=None, exception="a lost child, attempt unknown")
    assert state_of("t") == (State.SUCCESS, 0)  # a finished state is final
    assert Dispatch.objects.get(task_id="t").exception == ""


def test_only_a_newer_attempt_takes_a_row_further(writes: Any) -> None:
    with writes():
        write("r", State.FAILURE)
        Dispatch.objects.filter(task_id="r").update(retries=1, state=State.RETRY)  # the retry's publish
        write("r", State.FAILURE, retries=0, exception="the older attempt, late")
        assert state_of("r") == (State.RETRY, 1)
        write("r", State.RECEIVED, retries=1)
        write("r", State.STARTED, retries=1)
        assert state_of("r") == (State.STARTED, 1)
        write("r", State.FAILURE, retries=None, exception="lost")  # attempt unknown: goes by state
    assert state_of("r") == (State.FAILURE, 1)


def test_the_publisher_landing_late_fills_in_and_keeps_the_state(writes: Any) -> None:
    book = Book.objects.create(title="late publisher")
    record = records.build_record(((book,), {}, {}), {"id": "late", "task": add.name}, "", IDLE)
    with writes():
        write("late", State.RECEIVED, received_at=timezone.now())
        background.write([record])

    row = Dispatch.objects.get(task_id="late")
    assert (row.state, row.source, row.args) == (State.RECEIVED, Source.PUBLISHER, record.args)
    assert row.received_at is not None
    assert row.refs.get().object_repr == "late publisher"


def test_a_failure_in_the_main_process_creates_the_row(writes: Any) -> None:
    """A lost pool child (Celery puts the request on the task's stack) and a time limit (it does not)."""
    error = RuntimeError("WorkerLostError: the child died")
    task: Any = add  # push_request's keywords are not in the type stubs
    task.push_request(id="lost", args=[1, 2], kwargs={}, retries=0, delivery_info={"routing_key": IDLE})
    try:
        with writes():
            worker_side.on_task_failure(sender=add, task_id="lost", exception=error, args=[1, 2], kwargs={})
    finally:
        add.pop_request()
    with writes():
        worker_side.on_task_failure(sender=add, task_id="timed-out", exception=error, args=[1, 2], kwargs={})

    lost, timed_out = Dispatch.objects.get(task_id="lost"), Dispatch.objects.get(task_id="timed-out")
    assert (lost.state, lost.source, lost.args, lost.queue) == (State.FAILURE, Source.WORKER, "[1, 2]", IDLE)
    assert lost.exception == "RuntimeError: WorkerLostError: the child died"
    # Without the request, the arguments are left to the publisher's write.
    assert (timed_out.state, timed_out.task_name, timed_out.args) == (State.FAILURE, add.name, "[]")


def test_a_content_type_id_gone_from_the_database_is_read_afresh(content_types: None) -> None:
    """A long-lived process (a worker) whose cached content type ids were re-created meanwhile."""
    book = Book.objects.create(title="b")
    record = records.build_record(((book,), {}, {}), {"id": "stale", "task": add.name}, "", IDLE)
    real = ContentType.objects.get_for_model(Book)
    ContentType.objects.clear_cache()
    manager: Any = ContentType.objects  # its cache is not in the type stubs
    manager._add_to_cache("default", ContentType(pk=real.pk + 10_000, app_label="testapp", model="book"))

    background.write([record])

    assert Dispatch.objects.get(task_id="stale").refs.get().content_type == real
