"""Every way a task ends under taskops reaches a final state in Celery's event state machine.

``celery.events.state.State`` is the state machine that Flower (and ``celery
events``, and most monitors) feeds with a worker's events. A real taskops
worker runs with events on (``-E``) on Redis (kombu's filesystem broker
carries no events to another process); a receiver in this process captures
what the worker sends and feeds it to a ``State``, as Flower does. Each task
must end in one of Celery's ready states, as the result backend says too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import states
from celery.events.state import State
from django_celery_results.models import TaskResult
from kombu import Connection

from taskops.models import Dispatch
from taskops.wire.lanes import lane_of
from tests.brokers import REDIS_URL, connected, delete_queues, unique_queue
from tests.celery_app import app
from tests.conftest import WorkerProcess, start_worker_process
from tests.testapp.models import Answer, Question
from tests.testapp.tasks import add, best_answer, moderate_answer, read_body, summarize_thread

FORGED = {"__type__": "taskops.attrs", "__value__": {"class": "os.system", "data": {"command": "true"}}}


class Monitor:
    """Events from the broker at ``url``, fed to a ``State`` in a thread, as Flower feeds its own."""

    def __init__(self, url: str) -> None:
        self.state: Any = State()  # celery-types leaves out its tasks and workers
        self.connection = Connection(url)
        self.receiver = app.events.Receiver(self.connection, handlers={"*": self.state.event})
        self.thread = threading.Thread(target=self.receiver.capture, kwargs={"wakeup": False}, daemon=True)

    def __enter__(self) -> Monitor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.receiver.should_stop = True
        self.thread.join(timeout=10)
        self.connection.release()

    def ready(self, task_id: str) -> bool:
        task = self.state.tasks.get(task_id)
        return task is not None and bool(task.ready)

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                tasks = {uid: (task.name, task.state) for uid, task in self.state.tasks.items()}
                pytest.fail(f"no {what} within {timeout}s; tasks seen: {tasks}")
            time.sleep(0.2)


@pytest.fixture
def redis_worker(transactional_db: Any) -> Iterator[tuple[WorkerProcess, str]]:
    """A taskops worker with events on, on Redis, consuming a queue of its own (and its lane)."""
    queue = unique_queue()
    with connected(REDIS_URL):
        pass
    worker = start_worker_process("-E", env={"CELERY_BROKER_URL": REDIS_URL}, queue=queue)
    try:
        yield worker, queue
    finally:
        worker.stop()
        delete_queues(REDIS_URL, queue, lane_of(queue))


def publish_malformed(connection: Connection, queue: str) -> str:
    """A message Celery cannot read (an object for a body), as a producer without Celery might send it."""
    task_id = str(uuid.uuid4())
    connection.Producer().publish(
        json.dumps({"a": 1}),
        routing_key=queue,
        declare=[app.amqp.queues.new_missing(queue)],
        content_type="application/json",
        content_encoding="utf-8",
        headers={"lang": "py", "task": add.name, "id": task_id, "retries": 0},
    )
    return task_id


def test_skipped_refused_and_failed_tasks_end_final_in_the_event_state(redis_worker: tuple[WorkerProcess, str]) -> None:
    worker, queue = redis_worker
    question = Question.objects.create(title="Q", body="b")
    gone_question = Question.objects.create(title="gone", body="b")
    gone_answer = Answer.objects.create(question=question, body="gone")
    Answer.objects.filter(pk=gone_answer.pk).delete()  # the instance keeps its pk
    Question.objects.filter(pk=gone_question.pk).delete()
    best = Answer.objects.create(question=question, body="best", score=9)

    with Monitor(REDIS_URL) as monitor, connected(REDIS_URL) as connection:
        node = worker.name.split("@")[0]
        monitor.wait_for("heartbeat", lambda: any(name.startswith(node) for name in monitor.state.workers))

        def send(name: str, *args: Any) -> str:
            return str(app.send_task(name, args, connection=connection, queue=queue).id)

        sent = {
            "ran": send(add.name, 1, 2),
            "instance": send(best_answer.name, question),
            "skipped": send(moderate_answer.name, gone_answer),
            "missing": send(read_body.name, gone_question),
            "refused argument": send(summarize_thread.name, FORGED),
            "refused message": publish_malformed(connection, queue),
        }
        monitor.wait_for(
            "final state for every task",
            lambda: all(
                monitor.state.tasks.get(task_id) and monitor.state.tasks[task_id].ready for task_id in sent.values()
            ),
        )
        tasks = {what: monitor.state.tasks[task_id] for what, task_id in sent.items()}

    assert {what: task.state for what, task in tasks.items()} == {
        "ran": states.SUCCESS,
        "instance": states.SUCCESS,
        "skipped": states.REVOKED,
        "missing": states.FAILURE,
        "refused argument": states.FAILURE,
        "refused message": states.FAILURE,
    }
    # Arguments and results are Celery's reprs, made where the objects were.
    assert (tasks["instance"].args, tasks["instance"].result) == (f"({question!r},)", repr(best))
    # The reason of each ending is in the event, where Flower's task page shows it.
    assert tasks["skipped"].exception.startswith("TaskSkipped(")
    assert f"testapp.answer:{gone_answer.pk}" in tasks["skipped"].exception
    assert tasks["missing"].exception.startswith("MissingObjectError(")
    assert "class 'os.system' is not registered" in tasks["refused argument"].exception
    assert tasks["refused message"].exception.startswith("InvalidTaskError(")
    assert "body must be [args, kwargs, embed]" in tasks["refused message"].exception
    # The result backend agrees, and taskops keeps its finer states.
    stored = {what: TaskResult.objects.get(task_id=task_id).status for what, task_id in sent.items()}
    assert stored == {what: task.state for what, task in tasks.items()}
    recorded = dict(Dispatch.objects.filter(task_id__in=sent.values()).values_list("task_id", "state"))
    assert recorded[sent["skipped"]] == "SKIPPED"
    assert recorded[sent["refused message"]] == "REJECTED"
