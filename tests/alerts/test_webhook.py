"""Webhook posts that fail: each try noted on the alert, retried with a doubling backoff, given up after the
limit; a broker that refuses the post's task is a failed notification, never a failed evaluation."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from taskops.alerts import evaluate
from taskops.alerts.webhook import backoff, post_webhook
from taskops.conf import taskops_settings
from taskops.models import Alert, AlertRule, Channel, Condition, Drift
from tests.alerts.webhook_server import webhook_receiver
from tests.conftest import WorkerProcess, start_worker_process
from tests.factories import make_dispatch
from tests.polling import wait_for
from tests.testapp.models import Book

QUEUE = "taskops-tests-webhooks"
#: The worker's settings: short waits, so that every retry happens within the test.
BACKOFF, RETRIES = 0.5, 2
FAST = {"WEBHOOK_BACKOFF": BACKOFF, "WEBHOOK_RETRIES": RETRIES}
TRIES = 1 + RETRIES
#: The worker's waits before each retry (seconds).
WAITS = [BACKOFF * 2**i for i in range(RETRIES)]


@override_settings(TASKOPS={})
def test_the_default_is_5_retries_2_4_8_16_32_seconds_apart() -> None:
    assert taskops_settings.WEBHOOK_RETRIES == 5
    assert [backoff(tries) for tries in range(1, 6)] == [2, 4, 8, 16, 32]


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    """A worker of its own, on a queue of its own, with the short backoff."""
    worker = start_worker_process(concurrency=1, queue=QUEUE, env={"TASKOPS_TEST_SETTINGS": json.dumps(FAST)})
    yield worker
    worker.stop()


def closed_port() -> str:
    """A loopback address nothing listens on: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture(params=["HTTP 500", "closed port"])
def failing_endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Callable[[], int], int]]:
    """(URL, what a failed try says, how many posts reached it, how many should)."""
    if request.param == "closed port":
        yield closed_port(), "URLError: <urlopen error [Errno 111] Connection refused>", lambda: 0, 0
        return
    with webhook_receiver() as receiver:
        receiver.status = 500
        yield receiver.url, "HTTPError: HTTP Error 500", lambda: len(receiver.requests), TRIES


def failures(alert: Alert) -> list[dict[str, Any]]:
    notes = Alert.objects.get(pk=alert.pk).notifications
    return [note for note in notes if note["channel"] == "webhook" and not note["ok"]]


def test_a_failing_endpoint_is_tried_again_with_backoff_then_given_up(
    webhook_worker: WorkerProcess,
    transactional_db: None,
    failing_endpoint: tuple[str, str, Callable[[], int], int],
) -> None:
    url, says, reached, should_reach = failing_endpoint
    rule = AlertRule.objects.create(
        name="r",
        task_pattern="*",
        condition=Condition.STUCK,
        threshold=60,
        channels=[Channel.WEBHOOK],
        webhook_url=url,
        webhook_secret="s3cret",
    )
    alert = Alert.objects.create(rule=rule, subject="t.x", first_seen=timezone.now(), last_seen=timezone.now())

    post_webhook.apply_async((alert.pk, "opened", json.dumps({"event": "opened"})), queue=QUEUE)

    notes = wait_for(lambda: failures(alert) if len(failures(alert)) >= TRIES else None, what=f"{TRIES} failed tries")
    # Past the time a further try would have come (the next wait, doubled again), and a second more.
    given_up = dt.datetime.fromisoformat(notes[-1]["at"]) + dt.timedelta(seconds=WAITS[-1] * 2 + 1)
    wait_for(lambda: timezone.now() > given_up, interval=0.2)

    notes = failures(alert)
    assert [note["detail"].split(": ", 1)[0] for note in notes] == ["try 1", "try 2", "try 3, the last"]
    assert all(says in note["detail"] and note["event"] == "opened" for note in notes), notes
    assert reached() == should_reach
    at = [dt.datetime.fromisoformat(note["at"]) for note in notes]
    waited = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(at)]
    # Each retry waits its backoff (counted from the failure it follows), and not much more.
    assert all(wait <= took < wait + 5 for wait, took in zip(WAITS, waited, strict=True)), (WAITS, waited)


@pytest.mark.django_db
@override_settings(ADMINS=[("Ops", "ops@example.com")])
def test_a_broker_that_refuses_the_webhook_task_is_a_failed_notification(broker_down: None) -> None:
    AlertRule.objects.create(
        name="r",
        task_pattern="*",
        condition=Condition.ANY_MISSING,
        channels=[Channel.WEBHOOK, Channel.EMAIL],
        webhook_url="https://hooks.example.com/taskops",
        webhook_secret="s3cret",
    )
    make_dispatch(Book.objects.create(title="b"), task_name="t.x", drift=Drift.MISSING)

    (alert,) = evaluate().opened  # the round goes on

    alert.refresh_from_db()
    assert [(note["channel"], note["ok"]) for note in alert.notifications] == [("webhook", False), ("email", True)]
    assert "OperationalError" in alert.notifications[0]["detail"]
    assert alert.status == Alert.Status.OPEN
