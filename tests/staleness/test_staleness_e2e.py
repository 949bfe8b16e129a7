"""End to end with the real worker: lag, drift and the uncommitted-transaction race."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from celery import chain, chord
from django.db import transaction
from django.utils import timezone

from taskops.models import Dispatch, Drift, Source, State
from taskops.staleness import snapshot
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.testapp.models import Book, Question
from tests.testapp.tasks import (
    STALE_RETRY_SECONDS,
    add,
    read_body,
    read_body_or_retry,
    read_body_or_skip,
    read_body_untracked,
)

COUNTDOWN = 2.0


def finished(task_id: str, *states: str) -> Dispatch | None:
    row = Dispatch.objects.filter(task_id=task_id).first()
    return row if row is not None and row.state in (states or (State.SUCCESS, State.FAILURE, State.SKIPPED)) else None


def test_changed_body_with_countdown(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="old body")
    called_at = timezone.now()
    result = read_body.apply_async((question,), countdown=COUNTDOWN)
    question.body = "new body"
    question.save()

    assert result.get(timeout=60) == "new body"
    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")
    ref = row.refs.get()

    assert row.state == State.SUCCESS
    assert (ref.drift, ref.changed_fields) == (Drift.CHANGED, ["body"])  # updated_at (auto_now) does not count
    assert row.drift == Drift.CHANGED
    assert row.stale_action == "run"
    assert row.eta is not None
    assert row.started_at is not None
    assert row.lag is not None
    # Celery computes the ETA a moment before the publish signal stamps enqueued_at.
    assert row.started_at - called_at >= dt.timedelta(seconds=COUNTDOWN)
    assert row.started_at >= row.eta
    assert dt.timedelta(0) <= row.eta - row.enqueued_at <= dt.timedelta(seconds=COUNTDOWN)
    assert row.lag < dt.timedelta(seconds=COUNTDOWN)  # measured from the ETA, not from the enqueue
    assert row.worker == worker.name.replace("%h", row.worker.split("@")[1])
    assert row.finished_at is not None
    assert row.runtime is not None
    assert row.source == Source.PUBLISHER
    assert not row.in_transaction


def test_deleted_before_run_is_missing(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="b")
    result = read_body.apply_async((question,), countdown=1)
    question.delete()

    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")
    ref = row.refs.get()

    assert row.state == State.FAILURE
    assert "MissingObjectError" in row.exception
    assert (ref.drift, ref.likely_race) == (Drift.MISSING, False)
    assert (row.drift, row.likely_race, row.stale_action) == (Drift.MISSING, False, "fail")
    assert not Book.objects.exists()  # the body did not run


def test_uncommitted_row_is_a_likely_race(worker: WorkerProcess) -> None:
    with transaction.atomic():
        question = Question.objects.create(title="Q", body="not committed yet")
        result = read_body_untracked.delay(question)
        # Barrier: the worker has read the database and found the row missing.
        # Its own writes wait for this transaction on SQLite, so it says so first.
        wait_for(lambda: f"[{result.id}] started before its referenced rows were committed" in worker.log())

    row = wait_for(lambda: finished(result.id, State.FAILURE), what="the worker to record the failure")
    ref = row.refs.get()

    assert (ref.drift, ref.likely_race) == (Drift.MISSING, True)
    assert (row.drift, row.likely_race, row.in_transaction) == (Drift.MISSING, True, True)
    # Publisher (at commit) and worker wrote in either order and merged: one row, both halves.
    assert Dispatch.objects.filter(task_id=result.id).count() == 1
    assert row.args.startswith('[{"__type__": "taskops.model"')
    assert row.started_at is not None
    assert row.enqueued_at <= row.started_at
    Question.objects.get(pk=question.pk)  # the publisher's transaction committed
    assert "database is locked" not in worker.log()


def test_on_stale_skip_leaves_body_unrun(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="old")
    result = read_body_or_skip.apply_async((question,), countdown=1)
    Question.objects.filter(pk=question.pk).update(body="edited")

    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")

    assert row.state == State.SKIPPED
    assert row.stale_action == "skip"
    assert "changed since dispatch" in row.exception
    assert row.refs.get().changed_fields == ["body"]
    assert not Book.objects.exists()


def test_on_stale_retry_runs_again_after_its_countdown(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="old")
    result = read_body_or_retry.apply_async((question,), countdown=1)
    Question.objects.filter(pk=question.pk).update(body="edited while it waited")

    # The first attempt saw the edit, recorded its decision and went out again.
    retrying = wait_for(lambda: finished(result.id, State.RETRY), timeout=30, what="the stale attempt's retry")
    assert (retrying.retries, retrying.drift, retrying.stale_action) == (1, Drift.CHANGED, "retry")
    assert retrying.refs.get().changed_fields == ["body"]
    # The task option's countdown, not Celery's default of 180 s.
    assert retrying.eta is not None
    assert retrying.started_at is not None
    waited = retrying.eta - retrying.started_at
    assert dt.timedelta(seconds=STALE_RETRY_SECONDS) <= waited < dt.timedelta(seconds=STALE_RETRY_SECONDS + 10)

    row = wait_for(lambda: finished(result.id), timeout=STALE_RETRY_SECONDS + 15, what="the second attempt")
    assert result.get(timeout=10) == "edited while it waited"
    ref = row.refs.get()

    assert (row.state, row.retries) == (State.SUCCESS, 1)
    assert row.started_at is not None
    assert row.started_at >= retrying.started_at + dt.timedelta(seconds=STALE_RETRY_SECONDS)
    # Judged against the snapshots the retry sent (the rows as the first attempt fetched them): unchanged.
    assert (ref.digests, ref.drift, ref.changed_fields) == (
        snapshot.take(Question.objects.get(pk=question.pk)),
        Drift.UNCHANGED,
        [],
    )
    assert (row.drift, row.stale_action) == (Drift.UNCHANGED, "")  # the second attempt's: nothing to decide
    assert Book.objects.count() == 1  # the body ran once, on the fresh row


def test_a_link_callback_is_judged_against_the_row_at_its_publish(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="old")
    at_publish = snapshot.take(question)
    callback = read_body.si(question).set(countdown=COUNTDOWN)
    callback_id = callback.freeze().id
    result = add.apply_async((1, 2), link=callback)
    # Published by the worker when add returns; it waits for its countdown.
    published = wait_for(lambda: Dispatch.objects.filter(task_id=callback_id).first(), what="the callback's publish")
    Question.objects.filter(pk=question.pk).update(body="edited while the callback waited")

    row = wait_for(lambda: finished(callback_id), what="the callback to finish")
    ref = row.refs.get()

    assert result.get(timeout=10) == 3
    assert published.parent_id == result.id
    assert row.state == State.SUCCESS
    assert (ref.object_repr, ref.digests) == ("Q", at_publish)
    assert (ref.drift, ref.changed_fields) == (Drift.CHANGED, ["body"])
    assert (row.drift, row.stale_action) == (Drift.CHANGED, "run")
    assert Book.objects.count() == 1


def test_unchanged_runs_and_records_small_lag(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Q", body="same")
    result = read_body.delay(question)

    assert result.get(timeout=60) == "same"
    row = wait_for(lambda: finished(result.id), what="the dispatch to finish")

    assert (row.drift, row.stale_action) == (Drift.UNCHANGED, "")
    assert row.refs.get().drift == Drift.UNCHANGED
    assert row.received_at is not None
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.enqueued_at <= row.received_at <= row.started_at <= row.finished_at
    assert Book.objects.count() == 1


@pytest.mark.parametrize(
    "workflow",
    [
        lambda step: chain(add.si(1, 2), step),  # published by the worker when add returns
        lambda step: chord([add.si(1, 1), add.si(2, 2)], step),  # published by the header's last task
    ],
    ids=["chain step", "chord body"],
)
def test_a_step_the_worker_publishes_is_judged_against_the_row_at_its_publish(
    worker: WorkerProcess, workflow: Any
) -> None:
    question = Question.objects.create(title="Q", body="old")
    at_publish = snapshot.take(question)
    result = workflow(read_body.si(question).set(countdown=COUNTDOWN)).apply_async()
    published = wait_for(lambda: Dispatch.objects.filter(task_id=result.id).first(), what="the step's publish")
    Question.objects.filter(pk=question.pk).update(body="edited while the step waited")

    assert result.get(timeout=60) == "edited while the step waited"
    row = wait_for(lambda: finished(result.id), what="the step to finish")
    ref = row.refs.get()

    assert published.parent_id, (published.source, published.state)  # published from inside the workflow, by the worker
    assert (row.source, row.redacted) == (Source.PUBLISHER, False)
    assert (ref.object_repr, ref.digests, ref.digest_key) == ("Q", at_publish, snapshot.current_key().id)
    assert (ref.drift, ref.changed_fields) == (Drift.CHANGED, ["body"])
    assert (row.drift, row.stale_action) == (Drift.CHANGED, "run")
