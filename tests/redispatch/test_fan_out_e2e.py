"""End to end with real workers: a large re-dispatch fans out in the background, survives a killed
pool child (Celery delivers the fan-out again) and a killed worker (the fan-out is lost, the re-dispatch
stalls and is resumed), and publishes every object under exactly one task id, each call run once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Sum
from django.test import Client, override_settings
from django.urls import reverse

from taskops.models import Dispatch, ObjectRef, Redispatch, RedispatchItem, State
from taskops.redispatch import Draft, Options, for_objects, submit
from taskops.redispatch.resumption import is_stalled
from taskops.wire.lanes import lane_of
from tests.celery_app import app
from tests.conftest import WorkerProcess, start_worker_process
from tests.polling import wait_for
from tests.redispatch.conftest import IDLE
from tests.testapp.models import Book
from tests.testapp.tasks import touch_book

FAN_OUT_QUEUE = "taskops-tests-fan-out"
#: The calls of the killed-worker test run here, on a worker that stays alive.
CALLS_QUEUE = "taskops-tests-calls"
OBJECTS = 2_000


def pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(line) for line in found.split()]


def every_book(user: User, queue: str) -> Draft:
    """A re-dispatch of ``touch_book`` for every book, its calls sent to ``queue``."""
    return for_objects(
        user=user,
        task_name=touch_book.name,
        model_label="testapp.book",
        reason="the nightly job failed",
        queryset=Book.objects.all(),
        options=Options(queue=queue),
    )


def progress(redispatch: Redispatch) -> Redispatch:
    redispatch.refresh_from_db()
    return redispatch


def finished(redispatch: Redispatch) -> Redispatch | None:
    current = progress(redispatch)
    return current if current.outcome == Redispatch.Outcome.DONE else None


@override_settings(TASKOPS={"REDISPATCH_QUEUE": FAN_OUT_QUEUE})
def test_a_killed_fan_out_resumes_and_publishes_each_object_once(operator: User, transactional_db: Any) -> None:
    Book.objects.bulk_create(Book(title=f"book {i}") for i in range(OBJECTS))
    worker = start_worker_process(f"--queues={FAN_OUT_QUEUE}", concurrency=1)
    try:
        draft = every_book(operator, IDLE)  # the calls wait in a queue nobody reads: they are counted, not run
        redispatch = submit(draft)
        assert redispatch.outcome == Redispatch.Outcome.QUEUED

        wait_for(lambda: 0 < progress(redispatch).published < OBJECTS, what="the fan-out to be midway")
        (child,) = pool_children(worker.process.pid)
        os.kill(child, signal.SIGKILL)  # the pool child publishing the calls dies mid-batch

        done = wait_for(lambda: finished(redispatch), timeout=180, what="the fan-out to resume and finish")
        assert (done.published, done.skipped, done.total) == (OBJECTS, 0, OBJECTS)
        assert "WorkerLostError" in worker.log() or "Worker exited prematurely" in worker.log()
    finally:
        worker.stop()

    # Every object: exactly one task id (a batch cut short is published again under the same ids).
    book_type = ContentType.objects.get_for_model(Book)
    per_object = (
        ObjectRef.objects.filter(dispatch__operation=redispatch, content_type=book_type)
        .values("object_pk")
        .annotate(task_ids=Count("dispatch__task_id", distinct=True))
    )
    counts = sorted({row["task_ids"] for row in per_object})
    assert per_object.count() == OBJECTS
    assert counts == [1]
    assert Dispatch.objects.filter(operation=redispatch).count() == OBJECTS


def waiting(queue: str) -> int:
    """Messages waiting in ``queue``'s lane (where taskops publishes it)."""
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        return int(channel.queue_declare(queue=lane_of(queue), durable=True, auto_delete=False).message_count)


def purge(queue: str) -> None:
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        channel.queue_declare(queue=lane_of(queue), durable=True, auto_delete=False)
        channel.queue_purge(lane_of(queue))


def stalled_now(redispatch: Redispatch) -> tuple[str, int] | None:
    """Its outcome and count, once it has stalled (no heartbeat for REDISPATCH_STALLED_AFTER)."""
    current = progress(redispatch)
    return (current.outcome, current.published) if is_stalled(current) else None


def kill_whole(worker: WorkerProcess) -> None:
    """SIGKILL the worker's main process and its pool children: nothing of it says goodbye."""
    children = pool_children(worker.process.pid)
    os.kill(worker.process.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):  # it may have died with its parent
            os.kill(child, signal.SIGKILL)
    worker.process.wait(timeout=10)


KILLED_OBJECTS = 1_000


@override_settings(TASKOPS={"REDISPATCH_QUEUE": FAN_OUT_QUEUE, "REDISPATCH_STALLED_AFTER": 1})
def test_a_fan_out_whose_worker_is_killed_stalls_is_resumed_and_runs_each_call_once(
    operator: User, transactional_db: Any
) -> None:
    """The whole worker dies mid fan-out: its message is gone (the filesystem broker removed it when it was
    read), so nothing finishes it; it stalls, an operator resumes it from its page, and every object gets
    one task id and one run (the batch cut short, published again, is skipped by the worker)."""
    Book.objects.bulk_create(Book(title=f"book {i}") for i in range(KILLED_OBJECTS))
    purge(CALLS_QUEUE)
    small_batches = {"TASKOPS_TEST_SETTINGS": json.dumps({"REDISPATCH_BATCH_SIZE": 20})}
    calls = start_worker_process(queue=CALLS_QUEUE, concurrency=2)
    fan_out = start_worker_process(queue=FAN_OUT_QUEUE, concurrency=1, env=small_batches)
    replacement: WorkerProcess | None = None
    try:
        draft = every_book(operator, CALLS_QUEUE)
        redispatch = submit(draft)
        wait_for(lambda: 0 < progress(redispatch).published < KILLED_OBJECTS, what="the fan-out to be midway")
        kill_whole(fan_out)

        replacement = start_worker_process(queue=FAN_OUT_QUEUE, concurrency=1, env=small_batches)
        stalled = wait_for(lambda: stalled_now(redispatch), what="it to stall")
        outcome, published = stalled
        assert (outcome, published < KILLED_OBJECTS) == (Redispatch.Outcome.RUNNING, True)  # nothing finishes it
        client = Client()
        client.force_login(operator)
        resumed = client.post(reverse("admin:taskops_redispatch_resume", args=[redispatch.pk]))
        assert resumed.status_code == 302
        assert [str(m) for m in resumed.wsgi_request._messages] == [  # type: ignore[attr-defined]
            f"{redispatch} resumed: the rest is published in the background."
        ]

        done = wait_for(lambda: finished(redispatch), timeout=180, what="the resumed fan-out to finish")
        assert (done.published, done.skipped, done.total) == (KILLED_OBJECTS, 0, KILLED_OBJECTS)
        ran = Dispatch.objects.filter(operation=redispatch, state=State.SUCCESS)
        wait_for(lambda: ran.count() == KILLED_OBJECTS, timeout=300, what="every call to run")
        wait_for(lambda: waiting(CALLS_QUEUE) == 0, timeout=60, what="every delivery to be taken")
    finally:
        calls.stop()  # warm: what it runs ends first
        if replacement is not None:
            replacement.stop()
        fan_out.stop()
        purge(CALLS_QUEUE)

    # Each call ran once (touch_book adds a page per run), under one task id per object.
    assert Book.objects.aggregate(pages=Sum("pages"))["pages"] == KILLED_OBJECTS
    assert set(Book.objects.values_list("pages", flat=True)) == {1}
    book_type = ContentType.objects.get_for_model(Book)
    per_object = (
        ObjectRef.objects.filter(dispatch__operation=redispatch, content_type=book_type)
        .values("object_pk")
        .annotate(task_ids=Count("dispatch__task_id", distinct=True))
    )
    assert per_object.count() == KILLED_OBJECTS
    assert {row["task_ids"] for row in per_object} == {1}
    assert set(RedispatchItem.objects.filter(redispatch=redispatch).values_list("started_attempt", flat=True)) == {0}
