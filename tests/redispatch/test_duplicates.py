"""A batch published twice (cut short, then resumed) runs each call once: the worker skips a second delivery."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django_celery_results.models import TaskResult

from taskops import recording
from taskops.models import Dispatch, Redispatch, RedispatchItem, State
from taskops.recording.deliveries import DUPLICATE_NOTE, claim, claim_on_prerun, is_duplicate
from taskops.redispatch.publish import publish_pending
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.redispatch.conftest import saved_for_books
from tests.testapp.models import Book


@pytest.mark.django_db
def test_an_attempt_is_claimed_once_and_a_retry_again(operator: User) -> None:
    redispatch = saved_for_books(operator, 1)
    item = redispatch.items.get()

    deliveries = [claim(redispatch.pk, 0, item.task_id, retries) for retries in (0, 0, 1, 1, 0)]

    assert deliveries == [True, False, True, False, False]
    assert claim(redispatch.pk, 0, "another task id", 0)  # not this item's: nothing to tell, it runs
    assert RedispatchItem.objects.get(pk=item.pk).started_attempt == 1


@pytest.mark.django_db
def test_the_brokers_own_redelivery_runs_a_second_publish_does_not(operator: User) -> None:
    """``acks_late``: a message never acknowledged comes back ``redelivered`` and runs, as Celery promises."""
    redispatch = saved_for_books(operator, 1)
    item = redispatch.items.get()
    assert claim(redispatch.pk, 0, item.task_id, 0)  # the first delivery started, then its worker was lost

    def delivery(task_id: str, redelivered: bool) -> bool:
        request = SimpleNamespace(
            is_eager=False,
            retries=0,
            delivery_info={"redelivered": redelivered},
            taskops_operator={"op": redispatch.pk, "at": 0},
        )
        task = SimpleNamespace(request=request, backend=SimpleNamespace(get_task_meta=lambda task_id: {}))
        claim_on_prerun(task_id=task_id, task=task)
        return not is_duplicate(task_id)

    assert delivery(item.task_id, redelivered=True)
    assert not delivery(item.task_id, redelivered=False)


def test_a_batch_published_twice_runs_each_call_once(operator: User, worker: WorkerProcess) -> None:
    redispatch = saved_for_books(operator, 3)
    publish_pending(redispatch)
    wait_for(lambda: TaskResult.objects.filter(status="SUCCESS").count() == 3, what="the first deliveries to run")

    # The batch as a fan-out killed before it saved its progress leaves it: pending, so published again.
    redispatch.items.update(state=RedispatchItem.State.PENDING)
    Redispatch.objects.filter(pk=redispatch.pk).update(published=0, outcome=Redispatch.Outcome.FAILED)
    publish_pending(redispatch)

    wait_for(
        lambda: redispatch.items.filter(note=DUPLICATE_NOTE).count() == 3, what="the second deliveries to be skipped"
    )
    assert worker.log().count(f"skipped: {DUPLICATE_NOTE}") >= 3
    assert sorted(Book.objects.values_list("pages", flat=True)) == [1, 1, 1]  # each ran once
    redispatch.refresh_from_db()
    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.DONE, 3)
    assert recording.flush()
    task_ids = list(redispatch.items.values_list("task_id", flat=True))
    rows = Dispatch.objects.filter(task_id__in=task_ids)
    assert sorted((row.state, DUPLICATE_NOTE in row.notes) for row in rows) == [(State.SUCCESS, True)] * 3
    results = TaskResult.objects.filter(task_id__in=task_ids)
    assert sorted(results.values_list("status", flat=True)) == ["SUCCESS"] * 3  # the first run's, put back
    assert all(str(result.result).startswith('"book ') for result in results)


def test_a_resumed_call_that_never_ran_runs(operator: User, worker: WorkerProcess) -> None:
    """The claim skips only a second delivery: a call published once, on resume, runs."""
    redispatch = saved_for_books(operator, 2)
    Redispatch.objects.filter(pk=redispatch.pk).update(outcome=Redispatch.Outcome.FAILED)

    publish_pending(redispatch)

    wait_for(
        lambda: sorted(Book.objects.values_list("pages", flat=True)) == [1, 1], what="both calls to run", timeout=60
    )
    assert not redispatch.items.filter(note=DUPLICATE_NOTE).exists()
    assert list(redispatch.items.values_list("started_attempt", flat=True)) == [0, 0]
