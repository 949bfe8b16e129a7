"""The publish side, in-process: what a dispatch writes and what its message carries."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from celery import _state, group
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from taskops import recording
from taskops.models import Dispatch, Drift, ObjectRef, Source, State
from taskops.recording import background, publisher, records
from taskops.staleness import snapshot
from taskops.wire import HEADER
from tests.celery_app import app
from tests.recording.conftest import IDLE
from tests.testapp.models import Answer, Book, Question
from tests.testapp.tasks import add, count_refs, read_body

ON_POSTGRESQL = connection.vendor == "postgresql"


def test_delay_records_args_refs_and_header(content_types: None, sent: list[dict[str, Any]]) -> None:
    question = Question.objects.create(title="Why?", body="b")

    result = read_body.apply_async((question,), queue=IDLE, countdown=30)

    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    ref = row.refs.get()
    assert (row.state, row.source, row.queue, row.task_name) == (State.PENDING, Source.PUBLISHER, IDLE, read_body.name)
    assert (
        row.args
        == f'[{{"__type__": "taskops.model", "__value__": {{"model": "testapp.question", "pk": {question.pk}}}}}]'
    )
    assert json.loads(row.kwargs) == {}
    assert row.eta is not None
    assert row.eta > row.enqueued_at
    assert not row.in_transaction
    assert (row.ref_count, row.root_id, row.parent_id) == (1, result.id, "")
    assert (ref.content_type.model_class(), ref.object_pk, ref.argument) == (Question, str(question.pk), "args[0]")
    assert (ref.object_repr, ref.drift, ref.digests) == ("Why?", Drift.PENDING, snapshot.take(question))
    header = sent[-1][HEADER]
    assert header["tx"] is False
    assert header["enqueued_at"] == row.enqueued_at.isoformat()
    assert header["refs"] == [["testapp.question", question.pk, "args[0]", snapshot.take(question)]]


def statements(context: CaptureQueriesContext) -> list[str]:
    """The SQL statements run, without transaction control (BEGIN, COMMIT)."""
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    return [query["sql"].split()[0] for query in context.captured_queries if not query["sql"].startswith(control)]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The task ids of each ``recording.write`` call, from any thread."""
    calls: list[list[str]] = []
    real_write = background.write

    def spy(records: list[records.DispatchRecord]) -> None:
        calls.append([record.task_id for record in records])
        real_write(records)

    monkeypatch.setattr(background, "write", spy)
    return calls


def test_publish_runs_no_query_the_writer_writes(
    content_types: None, sent: list[dict[str, Any]], writes: list[list[str]]
) -> None:
    question = Question.objects.create(title="Q", body="b")

    with recording.writer_paused(), CaptureQueriesContext(connection) as context:
        results = [read_body.apply_async((question,), queue=IDLE) for _ in range(3)]
        assert not recording.flush(timeout=0.2)  # held back: not written yet

    assert context.captured_queries == []  # delay() did not wait for the database
    assert recording.flush()
    assert writes == [[result.id for result in results]]  # queued meanwhile: one batch, one write
    assert Dispatch.objects.filter(task_id__in=[result.id for result in results]).count() == 3


@override_settings(TASKOPS={"WRITE_BEHIND": False})
def test_one_write_per_dispatch(content_types: None, sent: list[dict[str, Any]]) -> None:
    question = Question.objects.create(title="Q", body="b")
    with CaptureQueriesContext(connection) as context:
        add.apply_async((1, 2), queue=IDLE)
    assert statements(context) == (["WITH"] if ON_POSTGRESQL else ["INSERT"])  # no refs: one INSERT
    with CaptureQueriesContext(connection) as context:
        read_body.apply_async((question,), queue=IDLE)
    # PostgreSQL: one statement (a data-modifying CTE); elsewhere the dispatch, then its refs in one bulk INSERT.
    assert statements(context) == (["WITH"] if ON_POSTGRESQL else ["INSERT", "INSERT"])


def test_lists_querysets_and_attrs_are_walked(content_types: None, sent: list[dict[str, Any]]) -> None:
    question = Question.objects.create(title="Q", body="b")
    answers = [Answer.objects.create(question=question, body=str(i)) for i in range(2)]
    evaluated = Question.objects.all()
    list(evaluated)

    @attrs.define
    class Holder:
        book: Any

    book = Book.objects.create(title="B")
    found: list[tuple[str, Any]] = []
    records.find_instances([answers, evaluated, Question.objects.all(), {"h": Holder(book)}], "args", found)
    assert [(path, obj) for path, obj in found] == [
        ("args[0][0]", answers[0]),
        ("args[0][1]", answers[1]),
        ("args[1][0]", question),  # evaluated QuerySet: instances from its cache
        ("args[2][0]", question),  # unevaluated QuerySet: evaluated now (the encoder then reads its cache)
        ("args[3].h.book", book),
    ]

    result = count_refs.apply_async((answers,), {"books": [book]}, queue=IDLE)
    assert recording.flush()
    refs = ObjectRef.objects.filter(dispatch__task_id=result.id).order_by("argument")
    assert [ref.argument for ref in refs] == ["args[0][0]", "args[0][1]", "kwargs.books[0]"]


def test_inside_a_transaction_the_row_is_written_at_commit(content_types: None, sent: list[dict[str, Any]]) -> None:
    with transaction.atomic():
        question = Question.objects.create(title="Q", body="b")
        result = read_body.apply_async((question,), queue=IDLE)
        assert recording.flush()  # nothing handed over yet
        assert not Dispatch.objects.filter(task_id=result.id).exists()
    assert sent[-1][HEADER]["tx"] is True
    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    assert row.in_transaction
    assert row.refs.get().digests == snapshot.take(question)


def test_rolled_back_transaction_writes_nothing(content_types: None, sent: list[dict[str, Any]]) -> None:
    def dispatch_then_fail() -> None:
        with transaction.atomic():
            add.apply_async((1, 2), queue=IDLE)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        dispatch_then_fail()
    assert len(sent) == 1  # the message went out (plain delay); its worker will create the row
    assert recording.flush()
    assert not Dispatch.objects.exists()


def test_group_in_a_batch_is_one_write(
    content_types: None, sent: list[dict[str, Any]], writes: list[list[str]]
) -> None:
    books = [Book.objects.create(title=str(i)) for i in range(10)]
    result: Any
    with recording.writer_paused(), CaptureQueriesContext(connection) as context, recording.batch():
        result = group(count_refs.s([], [book]) for book in books).apply_async(queue=IDLE)
    assert context.captured_queries == []
    assert recording.flush()
    assert writes == [[child.id for child in result.results]]  # ten dispatches, ten refs: one write
    inline = override_settings(TASKOPS={"WRITE_BEHIND": False})
    with inline, CaptureQueriesContext(connection) as context, recording.batch():
        group(count_refs.s([], [book]) for book in books).apply_async(queue=IDLE)
    assert statements(context) == (["WITH"] if ON_POSTGRESQL else ["INSERT", "INSERT"])
    rows = Dispatch.objects.filter(group_id=result.id)
    assert rows.count() == 10
    assert ObjectRef.objects.filter(dispatch__in=rows).count() == 10


def test_errors_are_logged_and_counted(
    content_types: None, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> Any:
        raise ValueError("broken snapshot")

    monkeypatch.setattr(snapshot, "take", broken)
    before = recording.errors
    question = Question.objects.create(title="Q", body="b")

    result = read_body.apply_async((question,), queue=IDLE)

    assert result.id
    assert len(sent) == 1
    assert recording.flush()
    assert recording.errors == before + 1
    assert "broken snapshot" in caplog.text
    assert not Dispatch.objects.exists()
    with override_settings(TASKOPS={"STRICT": True}), pytest.raises(recording.StrictRecordingError, match="broken"):
        read_body.apply_async((question,), queue=IDLE)
    assert len(sent) == 1


@override_settings(TASKOPS={"RECORDING": False})
def test_recording_off(content_types: None, sent: list[dict[str, Any]]) -> None:
    add.apply_async((1, 2), queue=IDLE)
    assert HEADER not in sent[-1]
    assert recording.flush()
    assert not Dispatch.objects.exists()


def test_eager_runs_are_not_recorded(content_types: None) -> None:
    question = Question.objects.create(title="Q", body="b")
    assert read_body.apply((question,)).get() == "b"
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        app.conf.task_always_eager = True
        try:
            assert add.delay(1, 2).get() == 3
        finally:
            app.conf.task_always_eager = False
    assert not Dispatch.objects.exists()


def test_task_result_by_task_id(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from django_celery_results.models import TaskResult

    row = Dispatch.objects.create(task_id="t-1", task_name="x", enqueued_at="2024-01-01T00:00:00Z")

    def linked() -> Any:
        return row.task_result

    assert linked() is None
    stored = TaskResult.objects.create(task_id="t-1", status="SUCCESS")
    assert linked() == stored
    monkeypatch.setattr("taskops.models.dispatch.apps.is_installed", lambda name: name != "django_celery_results")
    assert linked() is None


# --- the background writer, in this process ------------------------------------------------


def record_for(task_id: str, *instances: Any) -> records.DispatchRecord:
    """A publisher's record, as ``before_task_publish`` builds it."""
    return records.build_record((instances, {}, {}), {"id": task_id, "task": read_body.name}, "", IDLE)


def written_ids(*task_ids: str) -> set[str]:
    return set(Dispatch.objects.filter(task_id__in=task_ids).values_list("task_id", flat=True))


@pytest.fixture
def fresh_writer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A writer started by the test (with the test's sizes), stopped after it."""
    assert recording.shutdown()
    yield
    assert recording.shutdown()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+: fork() with threads running
def test_a_forked_child_starts_its_own_writer(content_types: None) -> None:
    question = Question.objects.create(title="Q", body="b")
    parent_writer = background.current_writer()
    assert parent_writer is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            child_writer = background.current_writer()
            fresh = child_writer is not parent_writer and child_writer is not None and child_writer.pid == os.getpid()
            publisher.submit(record_for("from-the-child", question))
            code = 0 if fresh and recording.flush(timeout=30) else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    try:
        assert os.read(read, 1) == b"\x00"  # blocks until the child reports
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert written_ids("from-the-child") == {"from-the-child"}
    assert parent_writer.is_running()  # the parent's thread is untouched
    assert background.current_writer() is parent_writer


def test_one_bad_record_does_not_lose_the_batch(content_types: None, caplog: pytest.LogCaptureFixture) -> None:
    question = Question.objects.create(title="Q", body="b")
    bad = record_for("bad", question)
    bad.refs[0].label = "testapp.nothing"  # no such model: its write raises
    before = recording.errors

    with recording.writer_paused():
        for record in (record_for("good-1", question), bad, record_for("good-2", question)):
            publisher.submit(record)
    assert not recording.flush()  # written but for one: flush says so

    assert written_ids("good-1", "bad", "good-2") == {"good-1", "good-2"}
    assert recording.errors == before + 1
    assert "a batch of 3 dispatches failed" in caplog.text
    assert "recording failed while writing the dispatch of bad" in caplog.text
    assert background.current_writer() is not None


@pytest.mark.parametrize("setting", [{"STRICT": True}, {"WRITE_BEHIND": False}])
def test_strict_or_write_behind_off_writes_at_the_call(
    content_types: None, sent: list[dict[str, Any]], setting: dict[str, bool]
) -> None:
    with recording.writer_paused(), override_settings(TASKOPS=setting):
        result = add.apply_async((1, 2), queue=IDLE)
        assert written_ids(result.id) == {result.id}


def test_published_from_a_running_task_is_written_at_the_call(content_types: None, sent: list[dict[str, Any]]) -> None:
    task_stack: Any = _state  # push/pop_current_task are not in the type stubs
    running: Any = add
    running.push_request(id="the-running-task")
    task_stack.push_current_task(running)
    try:
        assert not background.writes_behind()
        with recording.writer_paused():
            result = add.apply_async((1, 2), queue=IDLE)  # a retry, a chain step: as a worker publishes them
            assert written_ids(result.id) == {result.id}
    finally:
        task_stack.pop_current_task()
        running.pop_request()
    assert background.writes_behind()


def test_one_task_id_twice_in_a_batch_keeps_the_later_publish(
    content_types: None, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = Question.objects.create(title="first", body="b"), Question.objects.create(title="second", body="b")
    earlier, later = record_for("same-id", first), record_for("same-id", second)
    later.refs[0].argument = "args[1]"  # a different argument: both refs stay
    before = recording.errors

    with recording.writer_paused():
        publisher.submit(earlier)
        publisher.submit(later)
    assert recording.flush()

    row = Dispatch.objects.get(task_id="same-id")
    assert row.args == later.args
    assert sorted(row.refs.values_list("argument", "object_repr")) == [("args[0]", "first"), ("args[1]", "second")]
    # One statement could not update the row twice: two were sent, and nothing failed.
    assert recording.errors == before
    assert "failed" not in caplog.text
