"""End to end with the real worker: every publish path leaves one row per task id."""

from __future__ import annotations

import json
import os
import signal
from typing import Any, cast

from celery import chain, chord, group
from celery.signals import after_task_publish
from django.db import transaction
from django_celery_results.models import TaskResult

from taskops import recording
from taskops.models import Dispatch, Drift, Source, State
from taskops.wire import HEADER
from tests.conftest import WorkerProcess, start_worker_process
from tests.polling import wait_for
from tests.testapp.models import Question
from tests.testapp.tasks import add, read_body, retry_twice, sleep_for, total


def done(*task_ids: str) -> list[Dispatch] | None:
    rows = {row.task_id: row for row in Dispatch.objects.filter(task_id__in=task_ids)}
    finished = all(row.state in (State.SUCCESS, State.FAILURE, State.REVOKED) for row in rows.values())
    return [rows[task_id] for task_id in task_ids] if len(rows) == len(task_ids) and finished else None


def test_chain_of_three(worker: WorkerProcess) -> None:
    result: Any = chain(add.s(1, 1), add.s(2), add.s(3)).apply_async()
    assert result.get(timeout=60) == 7
    ids = [result.parent.parent.id, result.parent.id, result.id]

    first, second, third = wait_for(lambda: done(*ids), what="the chain's rows")

    assert {row.root_id for row in (first, second, third)} == {first.task_id}
    assert (second.parent_id, third.parent_id) == (first.task_id, second.task_id)
    assert [row.args for row in (first, second, third)] == ["[1, 1]", "[2, 2]", "[4, 3]"]
    assert all(row.source == Source.PUBLISHER and row.state == State.SUCCESS for row in (first, second, third))


def test_group_of_ten(worker: WorkerProcess) -> None:
    result: Any = group(add.s(i, i) for i in range(10)).apply_async()
    assert result.get(timeout=60) == [2 * i for i in range(10)]

    rows = wait_for(lambda: done(*(child.id for child in result.results)), what="the group's rows")

    assert {row.group_id for row in rows} == {result.id}
    assert [row.args for row in rows] == [f"[{i}, {i}]" for i in range(10)]


def test_group_in_a_batch_merges_with_rows_workers_wrote_first(worker: WorkerProcess) -> None:
    with recording.batch():  # written at the end of the block: a fast worker may start some first
        result: Any = group(add.s(i, 1) for i in range(10)).apply_async()
    assert result.get(timeout=60) == [i + 1 for i in range(10)]

    rows = wait_for(lambda: done(*(child.id for child in result.results)), what="the group's rows")

    assert [row.args for row in rows] == [f"[{i}, 1]" for i in range(10)]  # the publisher's half
    assert {row.state for row in rows} == {State.SUCCESS}  # the worker's half
    assert Dispatch.objects.filter(group_id=result.id).count() == 10


def test_chord_header_and_body(worker: WorkerProcess) -> None:
    result: Any = chord(add.s(i, 10) for i in range(3))(total.s())
    assert result.get(timeout=60) == 33
    header_ids = [child.id for child in result.parent.results]

    rows = wait_for(lambda: done(*header_ids, result.id), what="the chord's rows")

    *header, body = rows
    assert {row.group_id for row in header} == {result.parent.id}
    assert body.task_name == "tests.testapp.tasks.total"
    assert body.args == "[[10, 11, 12]]"
    assert body.parent_id in header_ids  # published by the header task that completed the chord


def test_retries_count_attempts_on_one_row(worker: WorkerProcess) -> None:
    result = retry_twice.delay()
    assert result.get(timeout=60) == 2

    (row,) = wait_for(lambda: done(result.id), what="the retried task's row")

    assert (row.state, row.retries, row.attempts) == (State.SUCCESS, 2, 3)
    assert Dispatch.objects.filter(task_id=result.id).count() == 1


def test_published_from_a_worker_is_recorded(worker: WorkerProcess) -> None:
    result: Any = (add.s(2, 3) | add.s(4)).delay()
    assert result.get(timeout=60) == 9
    (row,) = wait_for(lambda: done(result.id), what="the second step")
    assert row.parent_id == result.parent.id
    assert row.source == Source.PUBLISHER


def test_revoked_before_start(worker: WorkerProcess) -> None:
    result = add.apply_async((1, 2), countdown=3)
    result.revoke()

    (row,) = wait_for(lambda: done(result.id), what="the revocation to be recorded")

    assert row.state == State.REVOKED
    assert row.started_at is None
    assert row.finished_at is not None


def test_rolled_back_publisher_row_is_created_by_the_worker(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="b")
    try:
        with transaction.atomic():
            result = read_body.delay(question)  # sent now; its row would be written at commit
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert result.get(timeout=60) == "b"

    (row,) = wait_for(lambda: done(result.id), what="the worker's row")

    assert (row.source, row.state, row.task_name) == (Source.WORKER, State.SUCCESS, "tests.testapp.tasks.read_body")
    assert (
        row.args
        == f'[{{"__type__": "taskops.model", "__value__": {{"model": "testapp.question", "pk": {question.pk}}}}}]'
    )
    ref = row.refs.get()
    assert (ref.object_pk, ref.drift, ref.argument) == (str(question.pk), Drift.UNCHANGED, "args[0]")
    assert row.lag is not None
    assert row.received_at is not None


def test_a_late_publisher_write_merges_into_a_finished_row(worker: WorkerProcess) -> None:
    """The writer is held back until the task has run: its write fills in, never moves the state back."""
    question = Question.objects.create(title="Held back", body="b")
    headers: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        captured.append(dict(headers or {}))

    captured = headers
    after_task_publish.connect(capture, weak=False, dispatch_uid="tests.capture_late")
    try:
        with recording.writer_paused():
            result = read_body.delay(question)
            assert result.get(timeout=60) == "b"
            (row,) = wait_for(lambda: done(result.id), what="the worker's row")
            ref = row.refs.get()
            # Only the worker has written: it made the row from the headers.
            assert (row.source, row.state, ref.object_repr, ref.drift) == (
                Source.WORKER,
                State.SUCCESS,
                "",
                Drift.UNCHANGED,
            )
            assert not recording.flush(timeout=0.1)  # the publisher's record is still held
    finally:
        after_task_publish.disconnect(dispatch_uid="tests.capture_late")
    assert recording.flush()

    merged = Dispatch.objects.get(task_id=result.id)
    merged_ref = merged.refs.get()
    assert merged.state == State.SUCCESS  # not back to PENDING
    assert (merged.started_at, merged.finished_at, merged.runtime, merged.worker) == (
        row.started_at,
        row.finished_at,
        row.runtime,
        row.worker,
    )
    assert merged.source == Source.PUBLISHER  # the publisher's record landed
    assert merged.enqueued_at.isoformat() == headers[-1][HEADER]["enqueued_at"]
    assert (
        merged.args
        == f'[{{"__type__": "taskops.model", "__value__": {{"model": "testapp.question", "pk": {question.pk}}}}}]'
    )
    assert (merged_ref.object_repr, merged_ref.drift, merged_ref.checked_at) == (
        "Held back",
        Drift.UNCHANGED,
        ref.checked_at,
    )
    assert Dispatch.objects.filter(task_id=result.id).count() == 1


def test_delay_on_commit_records_at_commit_only(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="b")
    try:
        with transaction.atomic():
            cast(Any, read_body).delay_on_commit(question)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert recording.flush()
    assert not Dispatch.objects.exists()  # nothing published, nothing recorded

    with transaction.atomic():
        cast(Any, read_body).delay_on_commit(question)
        assert recording.flush()
        assert not Dispatch.objects.exists()
    assert recording.flush()
    row = Dispatch.objects.get()
    assert row.source == Source.PUBLISHER
    assert not row.in_transaction
    wait_for(lambda: done(row.task_id), what="the task to run")


KILL_QUEUE = "taskops-tests-kill"


def test_killed_worker_child_is_not_left_running(transactional_db: None) -> None:
    """A pool child killed mid-task (acks_late): the row ends FAILURE with WorkerLostError."""
    dedicated = start_worker_process("--pool=prefork", f"--queues={KILL_QUEUE}", concurrency=1)
    try:
        result = sleep_for.apply_async((60,), queue=KILL_QUEUE)
        wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.STARTED).exists(), what="start")
        started = wait_for(lambda: TaskResult.objects.filter(task_id=result.id, status="STARTED").first())
        os.kill(json.loads(started.result)["pid"], signal.SIGKILL)

        (row,) = wait_for(lambda: done(result.id), what="the lost task to be recorded")
        assert row.state == State.FAILURE
        assert "WorkerLostError" in row.exception
        assert row.finished_at is not None
    finally:
        dedicated.stop()
