"""Staleness in-process: the worker's start path (queries counted) and pending work."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from contextlib import AbstractContextManager
from typing import Any

import pytest
from celery import _state
from celery.exceptions import Ignore, Retry
from celery.signals import after_task_publish
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskops import wire as codec
from taskops.celery import STALE_RETRY_COUNTDOWN
from taskops.models import Dispatch, Drift, State
from taskops.recording import background, records
from taskops.recording import worker as worker_side
from taskops.staleness import StaleObjectError, judge_pending, snapshot
from taskops.wire import HEADER, parse_time
from tests.celery_app import app
from tests.testapp.models import Book, Question
from tests.testapp.tasks import add, count_refs, read_body, read_body_or_skip

IDLE = "taskops-tests-idle"
ON_POSTGRESQL = connection.vendor == "postgresql"


def run_as_worker(
    task: Any, args: tuple[Any, ...], at_start: AbstractContextManager[Any] | None = None, **headers: Any
) -> Any:
    """Publish-side record and header, then the worker's path in this process.

    The arguments go through the codec as on the wire; the task runs as the
    pool child runs it: task and request pushed (Celery's tracer does both),
    ``task_prerun``, ``__call__``, ``task_postrun``; inside ``at_start``
    (e.g. other settings in the worker).
    """
    task_id = str(uuid.uuid4())
    record = records.build_record((args, {}, {}), {"id": task_id, "task": task.name, **headers}, "", IDLE)
    background.write([record])
    decoded = codec.loads(codec.dumps(list(args)))
    request = {"id": task_id, "args": decoded, "kwargs": {}, "is_eager": False, "called_directly": False}
    task.push_request(
        **request,
        hostname="w@host",
        argsrepr="()",
        taskops=record.header().to_message(),
        delivery_info={"exchange": "", "routing_key": IDLE},
    )
    task_stack: Any = _state  # push/pop_current_task are not in the type stubs
    task_stack.push_current_task(task)
    with at_start or contextlib.nullcontext(), CaptureQueriesContext(connection) as context:
        try:
            retval = _run(task, task_id, decoded)
        finally:
            task_stack.pop_current_task()
            task.pop_request()
    return Dispatch.objects.get(task_id=task_id), retval, context.captured_queries


def _run(task: Any, task_id: str, decoded: list[Any]) -> Any:
    state, retval = State.SUCCESS, None
    worker_side.on_task_prerun(task_id=task_id, task=task)
    try:
        retval = task(*decoded)
    except Ignore:
        state = State.IGNORED
    except Retry:
        state = State.RETRY
    except Exception as exc:  # noqa: BLE001  # as the worker's tracer does: any error fails the task
        state = State.FAILURE
        worker_side.on_task_failure(task_id=task_id, exception=exc)
    worker_side.on_task_postrun(task_id=task_id, task=task, state=state)
    return retval


@pytest.fixture
def content_types(db: None) -> None:
    ContentType.objects.get_for_models(Question, Book)


@pytest.fixture
def committed_content_types(transactional_db: None) -> None:
    """As in a worker: no test transaction around the task, so its writes take their real path."""
    ContentType.objects.get_for_models(Question, Book)


def round_trips(queries: list[dict[str, Any]]) -> list[str]:
    """The first word of every statement sent, transaction control included."""
    return [query["sql"].split()[0] for query in queries]


def test_worker_queries_do_not_grow_with_refs(committed_content_types: None) -> None:
    questions = [Question.objects.create(title=f"q{i}", body="b") for i in range(10)]
    books = [Book.objects.create(title=f"b{i}") for i in range(10)]
    Question.objects.filter(pk=questions[3].pk).update(body="changed")

    row, retval, queries = run_as_worker(count_refs, (questions, books))

    # 2 SELECTs (one per model), then the start and the end in one write (the
    # task ended within START_LINGER). PostgreSQL: one statement (the dispatch
    # and its refs in one CTE). SQLite: one transaction, the dispatch's upsert and the refs'.
    assert round_trips(queries) == (
        ["SELECT", "SELECT", "WITH"] if ON_POSTGRESQL else ["SELECT", "SELECT", "BEGIN", "INSERT", "INSERT", "COMMIT"]
    )

    assert (row.state, retval, row.drift, row.worker) == (State.SUCCESS, 20, Drift.CHANGED, "w@host")
    drifts = dict(row.refs.values_list("argument", "drift"))
    assert drifts.pop("args[0][3]") == Drift.CHANGED
    assert set(drifts.values()) == {Drift.UNCHANGED}
    assert len(drifts) == 19
    assert row.refs.get(argument="args[0][3]").changed_fields == ["body"]


def test_worker_without_refs_writes_once(committed_content_types: None) -> None:
    row, retval, queries = run_as_worker(add, (2, 3))

    # No refs: the start and the end in one upsert, no transaction around it.
    assert round_trips(queries) == (["WITH"] if ON_POSTGRESQL else ["INSERT"])
    assert (row.state, retval, row.worker, row.drift) == (State.SUCCESS, 5, "w@host", Drift.UNCHANGED)
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.runtime is not None


def test_missing_before_staleness_is_recorded(content_types: None) -> None:
    question = Question.objects.create(title="q", body="b")
    args = (question,)
    Question.objects.filter(pk=question.pk).delete()

    row, _, _ = run_as_worker(read_body, args)

    assert (row.state, row.drift, row.stale_action) == (State.FAILURE, Drift.MISSING, "fail")
    assert "MissingObjectError" in row.exception
    assert row.refs.get().drift == Drift.MISSING


def test_on_stale_skip_and_fail(content_types: None, monkeypatch: pytest.MonkeyPatch) -> None:
    question = Question.objects.create(title="q", body="b")
    args = (question,)
    Question.objects.filter(pk=question.pk).update(body="new")

    row, _, _ = run_as_worker(read_body_or_skip, args)
    assert (row.state, row.stale_action) == (State.SKIPPED, "skip"), row.exception

    monkeypatch.setattr(read_body, "on_stale", "fail")
    row, _, _ = run_as_worker(read_body, args)
    assert (row.state, row.stale_action) == (State.FAILURE, "fail")
    assert StaleObjectError.__name__ in row.exception
    assert not Book.objects.exists()


def test_judge_pending(content_types: None, django_assert_max_num_queries: Any) -> None:
    questions = [Question.objects.create(title=f"q{i}", body="b") for i in range(3)]
    book = Book.objects.create(title="b")
    for question in questions:
        background.write([records.build_record(((question, book), {}, {}), {"id": f"t{question.pk}"}, "", IDLE)])
    Question.objects.filter(pk=questions[1].pk).update(title="edited")
    Question.objects.filter(pk=questions[2].pk).delete()

    with django_assert_max_num_queries(5):  # dispatches, refs, content types, one per model
        verdicts = judge_pending(Dispatch.objects.order_by("task_id"))

    assert [verdict.drift for verdict in verdicts] == [Drift.UNCHANGED, Drift.CHANGED, Drift.MISSING]
    assert [(ref.argument, drift, changed) for ref, drift, changed in verdicts[1].refs] == [
        ("args[0]", Drift.CHANGED, ["title"]),
        ("args[1]", Drift.UNCHANGED, []),
    ]
    assert verdicts[2].dispatch.task_id == f"t{questions[2].pk}"


@pytest.mark.parametrize("countdown", [None, 30])
def test_on_stale_retry_sends_fresh_snapshots(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch, countdown: float | None
) -> None:
    # Transactional: the retry's row is written at once, as in a worker (no test transaction around it).
    question = Question.objects.create(title="q", body="b")
    args = (question,)
    Question.objects.filter(pk=question.pk).update(body="new")
    monkeypatch.setattr(read_body, "on_stale", "retry")
    if countdown is not None:
        monkeypatch.setattr(read_body, "stale_retry_countdown", countdown)
    wait = dt.timedelta(seconds=STALE_RETRY_COUNTDOWN if countdown is None else countdown)
    before = timezone.now()
    headers: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        captured.append(dict(headers or {}))

    captured = headers
    after_task_publish.connect(capture, weak=False, dispatch_uid="tests.capture_retry")
    try:
        row, _, _ = run_as_worker(read_body, args)
    finally:
        after_task_publish.disconnect(dispatch_uid="tests.capture_retry")
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(IDLE)  # type: ignore[attr-defined]

    assert (row.state, row.retries, row.stale_action) == (State.RETRY, 1, "retry")
    (retry_header,) = headers
    assert retry_header["id"] == row.task_id
    fresh = snapshot.take(Question.objects.get(pk=question.pk))
    assert retry_header[HEADER]["refs"] == [["testapp.question", question.pk, "args[0]", fresh]]
    assert not Book.objects.exists()
    eta = parse_time(retry_header["eta"])
    assert eta is not None
    assert before + wait <= eta <= timezone.now() + wait  # the option's countdown, not Celery's 180 s


def test_a_key_change_between_dispatch_and_start_is_unknown_not_changed(content_types: None) -> None:
    question = Question.objects.create(title="q", body="b")
    Question.objects.filter(pk=question.pk).update(body="changed, but under another key no one can tell")

    row, _, _ = run_as_worker(read_body, (question,), at_start=override_settings(SECRET_KEY="a rotated key"))

    ref = row.refs.get()
    assert (row.drift, ref.drift, ref.changed_fields, row.stale_action) == (Drift.PENDING, Drift.PENDING, [], "")
    assert "drift not checked: the digests were made under key " in row.notes
    assert row.state == State.SUCCESS

    # The old key among SECRET_KEY_FALLBACKS (Django's rotation): compared as before.
    rotated = override_settings(SECRET_KEY="a rotated key", SECRET_KEY_FALLBACKS=[settings.SECRET_KEY])
    row, _, _ = run_as_worker(read_body, (question,), at_start=rotated)
    assert (row.drift, row.refs.get().changed_fields, row.notes) == (Drift.CHANGED, ["body"], "")


def test_judge_pending_after_a_key_change(content_types: None) -> None:
    question = Question.objects.create(title="q", body="b")
    background.write([records.build_record(((question,), {}, {}), {"id": "queued"}, "", IDLE)])
    Question.objects.filter(pk=question.pk).update(title="edited")
    queued = Dispatch.objects.filter(task_id="queued")

    with override_settings(SECRET_KEY="a rotated key"):
        (unknown,) = judge_pending(queued)
    with override_settings(SECRET_KEY="a rotated key", SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
        (compared,) = judge_pending(queued)

    assert (unknown.drift, [(drift, changed) for _, drift, changed in unknown.refs]) == (
        Drift.PENDING,
        [(Drift.PENDING, [])],
    )
    assert len(unknown.notes) == 1
    assert "drift not checked" in unknown.notes[0]
    assert (compared.drift, compared.refs[0][2], compared.notes) == (Drift.CHANGED, ["title"], ())
