"""A fleet in which some workers lack taskops loses no task, on Redis and on RabbitMQ.

A stock Celery worker (``tests/fleet/stock_app.py``: no Django, no taskops,
the same task name) consumes a queue beside a publisher with taskops.
Measured first, with lanes turned off: the stock worker takes a taskops
message, cannot decode it, logs "Can't decode message body" and acks it; the
queue is empty, the task is gone. A content type it does not accept is
rejected without requeue: gone as well. Then with lanes (the default): the stock
worker goes on running plain messages from its own kind of publisher, never
sees a taskops message, and when a worker with taskops comes, every one runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from kombu import Connection

from taskops.models import Dispatch, State
from taskops.wire.lanes import lane_of
from tests.brokers import BROKERS, connected, delete_queues, message_count, unique_queue
from tests.celery_app import app
from tests.conftest import BASE_DIR, WorkerProcess, launch_worker, start_worker_process
from tests.testapp.models import Answer, Question
from tests.testapp.tasks import moderate_answer

STOCK_APP_DIR = BASE_DIR / "tests" / "fleet"
DECODE_ERROR = "Can't decode message body"
REFUSED = "The message has been ignored and discarded"


def start_stock_worker(url: str, queue: str, log_dir: Path) -> WorkerProcess:
    """``celery -A stock_app worker`` on ``queue``: Celery's own consumer, kombu's own JSON."""
    name = f"stock-{uuid.uuid4().hex[:8]}"
    # Celery's own environment variables (CELERY_BROKER_URL) would win over the app's broker.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH") and not key.startswith("CELERY_")
    }
    env.update(STOCK_BROKER_URL=url, STOCK_QUEUE=queue, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "celery", "-A", "stock_app", "worker", "--loglevel=INFO", "--concurrency=1"]
    command += [f"--hostname={name}@%h", f"--queues={queue}", "--without-mingle", "--without-gossip"]
    return launch_worker(name, command, STOCK_APP_DIR, env, log_dir / f"{name}.log")


def wait_until(what: str, done: Callable[[], bool], log: Callable[[], str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s; log:\n{log()}")
        time.sleep(0.2)


def publish_plain(connection: Connection, queue: str, value: int, content_type: str = "application/json") -> None:
    """A call from a publisher without taskops: protocol 2, plain JSON arguments."""
    connection.Producer().publish(
        json.dumps([[value], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]),
        routing_key=queue,
        declare=[app.amqp.queues.new_missing(queue)],
        content_type=content_type,
        content_encoding="utf-8",
        headers={"lang": "py", "task": moderate_answer.name, "id": str(uuid.uuid4()), "retries": 0},
    )


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, transactional_db: Any) -> Iterator[tuple[str, str]]:
    """(broker URL, a queue of this test's own); the queue and its lane are deleted afterwards."""
    url, queue = BROKERS[request.param], unique_queue()
    with connected(url):
        pass
    yield url, queue
    delete_queues(url, queue, lane_of(queue))


def test_a_worker_without_taskops_never_takes_a_taskops_message(broker: tuple[str, str], tmp_path: Path) -> None:
    url, queue = broker
    question = Question.objects.create(title="Q", body="b")
    answers = [Answer.objects.create(question=question, body=f"answer {i}") for i in range(3)]
    stock = start_stock_worker(url, queue, tmp_path)
    try:
        assert "stock worker: taskops modules [], Django configured: False" in stock.log()
        assert f".> transport:   {url.split(':')[0]}://" in stock.log()
        with connected(url) as connection:
            # Measured without lanes: the stock worker takes the message and drops it.
            with override_settings(TASKOPS={"QUEUE_SUFFIX": ""}):
                lost = moderate_answer.apply_async((answers[0],), connection=connection, queue=queue)
            wait_until("the stock worker drops it", lambda: DECODE_ERROR in stock.log(), stock.log)
            assert message_count(url, queue) == 0
            # A content type it does not accept fares no better: rejected without requeue, deleted.
            publish_plain(connection, queue, 5, content_type="application/x-taskops+json")
            wait_until("the stock worker refuses it", lambda: REFUSED in stock.log(), stock.log)
            assert "ContentDisallowed" in stock.log()
            assert message_count(url, queue) == 0

            # With lanes: the taskops messages wait on the lane, the stock worker runs its own kind.
            kept = [moderate_answer.apply_async((answer,), connection=connection, queue=queue) for answer in answers]
            publish_plain(connection, queue, 7)
            wait_until("the stock worker runs a plain call", lambda: "moderate_answer(7)" in stock.log(), stock.log)
        assert stock.log().count(DECODE_ERROR) == 1  # only the message sent without a lane
        assert "stock worker ran moderate_answer(" + "{" not in stock.log()
        assert message_count(url, lane_of(queue)) == len(kept)
    finally:
        stock.stop()

    upgraded = start_worker_process(env={"CELERY_BROKER_URL": url}, queue=queue)
    try:
        assert [result.get(timeout=60) for result in kept] == [Answer.Status.APPROVED] * len(kept)
    finally:
        upgraded.stop()
    assert message_count(url, lane_of(queue)) == 0
    states = dict(Dispatch.objects.values_list("task_id", "state"))
    assert [states[result.id] for result in kept] == [State.SUCCESS] * len(kept)
    assert states[lost.id] == State.PENDING  # the dropped one never ran, but its record (and arguments) remain
