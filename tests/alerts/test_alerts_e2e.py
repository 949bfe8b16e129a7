"""End to end with a real worker: a task made stale on purpose opens one alert, told once on every channel;
more occurrences count on it; acknowledged, then clear, it resolves and is told once more."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import transaction
from django.test import override_settings

from taskops.alerts import acknowledge, evaluate
from taskops.alerts.webhook import SIGNATURE_HEADER
from taskops.models import Alert, AlertRule, Channel, Condition, Dispatch, Drift, State
from taskops.signals import alert_opened, alert_resolved
from tests.alerts.webhook_server import Receiver, webhook_receiver
from tests.conftest import WorkerProcess
from tests.polling import wait_for
from tests.testapp.models import Question
from tests.testapp.tasks import read_body, read_body_untracked

SECRET = "webhook-secret"


def stale_run(question: Question) -> Dispatch:
    """``read_body`` with a countdown, the question edited while it waits: its start finds it changed."""
    result = read_body.apply_async((question,), countdown=1)
    question.body += " (edited)"
    question.save()
    result.get(timeout=60)
    return wait_for(
        lambda: Dispatch.objects.filter(task_id=result.id, state=State.SUCCESS, drift=Drift.CHANGED).first(),
        what="the stale run to be recorded",
    )


def webhook_answers(alert: Alert) -> list[str]:
    """What the webhook answered, as the worker noted it on the alert."""
    notes = Alert.objects.get(pk=alert.pk).notifications
    return [n["detail"] for n in notes if n["channel"] == "webhook" and n["detail"].startswith("HTTP")]


def posts(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    wait_for(lambda: len(receiver.requests) >= count, what=f"{count} webhook post(s)")
    bodies = []
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)  # signed with the rule's secret
        bodies.append(json.loads(body))
    return bodies


@override_settings(ADMINS=[("Ops", "ops@example.com")], TASKOPS={"ALERTS_INTERVAL": 1})
def test_one_incident_told_once_on_open_and_once_on_resolve(
    worker: WorkerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[str] = []
    alert_opened.connect(lambda alert, **kw: told.append("opened"), weak=False, dispatch_uid="e2e.opened")
    alert_resolved.connect(lambda alert, **kw: told.append("resolved"), weak=False, dispatch_uid="e2e.resolved")
    try:
        with webhook_receiver() as receiver:
            AlertRule.objects.create(
                name="stale questions",
                task_pattern="tests.testapp.tasks.read_*",
                condition=Condition.DRIFT_RATE,
                threshold=10,
                window=dt.timedelta(seconds=30),
                cooldown=dt.timedelta(seconds=5),
                channels=[Channel.EMAIL, Channel.WEBHOOK, Channel.SIGNAL, Channel.LOG, Channel.DASHBOARD],
                webhook_url=receiver.url,
                webhook_secret=SECRET,
            )
            question = Question.objects.create(title="q", body="first")
            dispatch = stale_run(question)

            with caplog.at_level(logging.WARNING, logger="taskops.alerts"):
                (alert,) = evaluate().opened
            assert alert.subject == read_body.name
            assert dispatch.pk in alert.samples
            assert [m.to for m in mail.outbox] == [["ops@example.com"]]
            assert told == ["opened"]
            assert "stale questions: tests.testapp.tasks.read_body" in caplog.text
            assert [body["event"] for body in posts(receiver, 1)] == ["opened"]  # posted by the worker

            stale_run(question)
            assert evaluate().opened == []
            alert.refresh_from_db()
            assert alert.count == 2
            assert (len(mail.outbox), told, len(receiver.requests)) == (1, ["opened"], 1)  # nothing new told

            acknowledge(alert, User.objects.create_user("op"))
            later = alert.last_seen + dt.timedelta(seconds=31)  # the stale runs are out of the window
            assert evaluate(later).resolved == []  # clear: the cool-down starts
            (resolved,) = evaluate(later + dt.timedelta(seconds=5)).resolved
            assert resolved.pk == alert.pk
            assert Alert.objects.get(pk=alert.pk).status == Alert.Status.RESOLVED
            assert len(mail.outbox) == 2
            assert told == ["opened", "resolved"]
            assert [body["event"] for body in posts(receiver, 2)] == ["opened", "resolved"]
            # The worker notes each answer after the receiver has it: wait for both notes.
            answers = wait_for(lambda: webhook_answers(alert) if len(webhook_answers(alert)) >= 2 else None)
            assert answers == ["HTTP 200", "HTTP 200"]
    finally:
        alert_opened.disconnect(dispatch_uid="e2e.opened")
        alert_resolved.disconnect(dispatch_uid="e2e.resolved")


def test_a_missing_row_opens_its_alert_when_the_task_starts(worker: WorkerProcess) -> None:
    rule = AlertRule.objects.create(
        name="gone", task_pattern=read_body.name, condition=Condition.ANY_MISSING, channels=[Channel.DASHBOARD]
    )
    question = Question.objects.create(title="q", body="b")
    result = read_body.apply_async((question,), countdown=1)
    question.delete()

    def told() -> Alert | None:
        # The worker opens the alert, then tells its channels: wait for both.
        return next((alert for alert in Alert.objects.filter(rule=rule) if alert.notifications), None)

    alert = wait_for(told, what="the worker to open the alert at start and tell it")

    assert alert.subject == read_body.name
    assert alert.status == Alert.Status.OPEN
    assert [n["channel"] for n in alert.notifications] == ["dashboard"]
    row = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.FAILURE).first(), what="the failure")
    assert alert.samples == [row.pk]


def test_a_likely_race_opens_its_alert_when_the_task_starts(worker: WorkerProcess) -> None:
    rule = AlertRule.objects.create(
        name="race",
        task_pattern=read_body_untracked.name,
        condition=Condition.ANY_RACE,
        channels=[Channel.DASHBOARD],
    )
    with transaction.atomic():
        question = Question.objects.create(title="q", body="not committed yet")
        result = read_body_untracked.delay(question)
        # The worker has found the row missing while this transaction is open: a likely race.
        wait_for(lambda: f"[{result.id}] started before its referenced rows were committed" in worker.log())

    def told() -> Alert | None:
        return next((alert for alert in Alert.objects.filter(rule=rule) if alert.notifications), None)

    alert = wait_for(told, what="the worker to open the race's alert at start and tell it")

    assert (alert.subject, alert.status, alert.count) == (read_body_untracked.name, Alert.Status.OPEN, 1)
    assert [n["channel"] for n in alert.notifications] == ["dashboard"]
    row = wait_for(lambda: Dispatch.objects.filter(task_id=result.id, state=State.FAILURE).first(), what="the failure")
    assert row.likely_race
    # At start the publisher's row may not be written yet (it is written at commit): the next round counts the
    # same incident, and names the dispatch.
    assert evaluate().opened == []
    alert.refresh_from_db()
    assert (alert.count, alert.samples) == (2, [row.pk])
