"""Refs over the header's budget travel in the publisher's record, and the worker still judges them.

A broker caps a message's headers (RabbitMQ: one 128 KiB frame), so the
``taskops`` header carries at most ``TASKOPS["HEADER_BYTES"]`` of refs; the
rest are counted in ``spilled`` and read back by the worker from the
``ObjectRef`` rows the publisher wrote. End to end with the test worker, and
with a message at ``MAX_REFS`` through RabbitMQ.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
from celery import states
from celery.signals import after_task_publish
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from taskops.models import Dispatch, Drift
from taskops.wire import HEADER, HeaderRef, TaskopsHeader
from taskops.wire.lanes import lane_of
from tests.celery_app import app
from tests.conftest import WorkerProcess, start_worker_process
from tests.polling import wait_for
from tests.testapp.models import Question
from tests.testapp.tasks import add, count_refs

#: RabbitMQ, up on every machine the suite runs on (``.ci/run`` starts it).
AMQP_URL = os.environ.get("TASKOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
#: Peak resident memory a message at ``MAX_REFS`` may add (README, "What a worker refuses").
MAIN_PROCESS_BUDGET_MB = 64
POOL_CHILD_BUDGET_MB = 128


def a_ref(index: int) -> HeaderRef:
    return HeaderRef("testapp.question", index, f"args[0][{index}]", {"title": "0" * 16, "body": "1" * 16})


def test_refs_over_the_budget_are_left_out_and_counted() -> None:
    header = TaskopsHeader(timezone.now(), False, tuple(a_ref(i) for i in range(20)), digest_key="k1")

    small = header.to_message(budget=100_000)
    spilled = header.to_message(budget=500)

    assert len(small["refs"]) == 20
    assert "spilled" not in small
    assert (spilled["refs"], spilled["spilled"], spilled["kid"]) == ([], 20, "k1")
    assert len(json.dumps(spilled)) < 500
    read = TaskopsHeader.from_message(spilled)
    assert (read.refs, read.spilled, read.problems) == ((), 20, ())


@pytest.mark.parametrize(("value", "shown"), [(-1, "-1"), ("3", "'3'"), (True, "True"), (1.5, "1.5")])
def test_a_spilled_count_that_is_not_a_count_is_a_problem(value: Any, shown: str) -> None:
    read = TaskopsHeader.from_message({"v": 1, "refs": [], "spilled": value})

    assert read.spilled == 0
    assert read.problems == (f"spilled {shown} is not a count",)


@pytest.fixture
def sent_headers() -> Iterator[list[dict[str, Any]]]:
    """The ``taskops`` header of every message published during the test."""
    seen: list[dict[str, Any]] = []

    def keep(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if headers and HEADER in headers:
            seen.append(headers[HEADER])

    after_task_publish.connect(keep, weak=False)
    yield seen
    after_task_publish.disconnect(keep)


@override_settings(TASKOPS={"HEADER_BYTES": 200})
def test_a_worker_judges_the_refs_left_out_of_the_header(
    worker: WorkerProcess, sent_headers: list[dict[str, Any]]
) -> None:
    questions = [Question.objects.create(title=f"Question {i}", body="b") for i in range(6)]

    result = count_refs.apply_async((questions, []), countdown=2)
    Question.objects.filter(pk=questions[4].pk).update(title="Changed while it waited")

    assert result.get(timeout=90) == 6
    assert (sent_headers[0]["refs"], sent_headers[0]["spilled"]) == ([], 6)
    dispatch = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, drift=Drift.CHANGED).first())
    drifts = {ref.object_pk: (ref.drift, ref.changed_fields) for ref in dispatch.refs.all()}
    assert drifts.pop(str(questions[4].pk)) == (Drift.CHANGED, ["title"])
    assert list(drifts.values()) == [(Drift.UNCHANGED, [])] * 5


def publish_raw(body: Any, header: dict[str, Any], task: str) -> str:
    """A task message with a ``taskops`` header of our making (no Celery publish path, no record)."""
    task_id = str(uuid.uuid4())
    queue = app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE]
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            json.dumps(body),
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            declare=[queue],
            content_type="application/json",
            content_encoding="utf-8",
            headers={"lang": "py", "task": task, "id": task_id, "retries": 0, HEADER: header},
        )
    return task_id


def test_refs_left_out_and_never_recorded_are_not_checked_and_say_why(worker: WorkerProcess) -> None:
    question = Question.objects.create(title="Unrecorded", body="b")
    model = {"__type__": "taskops.model", "__value__": {"model": "testapp.question", "pk": question.pk}}
    header = {"v": 1, "enqueued_at": timezone.now().isoformat(), "tx": False, "refs": [], "spilled": 1}

    task_id = publish_raw([[[model], []], {}, {}], header, count_refs.name)

    dispatch = wait_for(lambda: Dispatch.objects.filter(task_id=task_id, state=states.SUCCESS).first(), timeout=90)
    assert dispatch.drift == Drift.PENDING  # "not checked", never "unchanged"
    assert "the publisher's record of them was not found (found 0): not checked" in dispatch.notes


def peak_rss_mb(pid: int) -> float:
    """The peak resident set of a process so far (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def pool_child(worker: WorkerProcess) -> int:
    children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.fixture
def rabbitmq_worker(transactional_db: Any) -> Iterator[tuple[WorkerProcess, str]]:
    """A worker of one pool child reading a queue of its own on RabbitMQ."""
    queue = f"taskops-tests-spilled-{uuid.uuid4().hex[:8]}"
    worker = start_worker_process(f"--queues={queue}", concurrency=1, env={"CELERY_BROKER_URL": AMQP_URL})
    yield worker, queue
    worker.stop()
    with kombu.Connection(AMQP_URL) as connection:
        for name in (queue, lane_of(queue)):  # taskops publishes to the queue's lane
            connection.default_channel.queue_delete(name)  # type: ignore[attr-defined]


def test_a_message_at_max_refs_crosses_rabbitmq_is_judged_and_stays_in_its_memory_budget(
    rabbitmq_worker: tuple[WorkerProcess, str],
) -> None:
    worker, queue = rabbitmq_worker
    Question.objects.bulk_create(Question(title=f"Question {i}", body="b") for i in range(10_000))
    questions = list(Question.objects.order_by("pk"))
    with app.connection_for_write(AMQP_URL) as connection, connection.Producer() as producer:
        # Warm the pool child (Django, the models) so that the peak measured after is the message's.
        assert add.apply_async((1, 2), queue=queue, producer=producer).get(timeout=90) == 3
        main_before, child_before = peak_rss_mb(worker.process.pid), peak_rss_mb(pool_child(worker))
        result = count_refs.apply_async((questions, []), queue=queue, producer=producer, countdown=3)
    Question.objects.filter(pk=questions[9_999].pk).update(body="Changed while it waited")

    assert result.get(timeout=180) == 10_000
    dispatch = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, drift=Drift.CHANGED).first(), timeout=60)
    assert dispatch.ref_count == 10_000
    assert dispatch.lag is not None
    assert dispatch.lag > dt.timedelta(0)
    assert list(dispatch.refs.filter(drift=Drift.CHANGED).values_list("object_pk", flat=True)) == [
        str(questions[9_999].pk)
    ]
    assert dispatch.refs.filter(drift=Drift.UNCHANGED).count() == 9_999
    main_growth = peak_rss_mb(worker.process.pid) - main_before
    child_growth = peak_rss_mb(pool_child(worker)) - child_before
    assert main_growth < MAIN_PROCESS_BUDGET_MB, f"main process grew {main_growth:.0f} MB"
    assert child_growth < POOL_CHILD_BUDGET_MB, f"pool child grew {child_growth:.0f} MB"
