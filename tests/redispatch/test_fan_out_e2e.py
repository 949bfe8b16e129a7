"""End to end with a real worker: a large re-dispatch fans out in the background, survives a killed
pool child, and publishes every object under exactly one task id."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count
from django.test import override_settings

from taskops.models import Dispatch, ObjectRef, Redispatch
from taskops.redispatch import Options, for_objects, submit
from tests.conftest import start_worker_process
from tests.polling import wait_for
from tests.redispatch.conftest import IDLE
from tests.testapp.models import Book
from tests.testapp.tasks import touch_book

FAN_OUT_QUEUE = "taskops-tests-fan-out"
OBJECTS = 2_000


def pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(line) for line in found.split()]


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
        draft = for_objects(
            user=operator,
            task_name=touch_book.name,
            model_label="testapp.book",
            reason="the nightly job failed",
            queryset=Book.objects.all(),
            options=Options(queue=IDLE),  # the calls wait in a queue nobody reads: they are counted, not run
        )
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
