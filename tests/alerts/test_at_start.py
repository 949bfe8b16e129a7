"""Alerts judged when a task starts (in-process, on the worker's start path): an error there never breaks the task."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError

from taskops import recording
from taskops.models import Alert, AlertRule, Condition, Drift, State
from tests.staleness.test_start import run_as_worker
from tests.testapp.models import Answer, Question
from tests.testapp.tasks import moderate_answer, read_body


@pytest.fixture
def missing_rule(db: None) -> AlertRule:
    ContentType.objects.get_for_models(Question, Answer)
    return AlertRule.objects.create(name="gone", task_pattern="tests.testapp.tasks.*", condition=Condition.ANY_MISSING)


@pytest.fixture
def observe_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alert's write fails, as with the database gone or a lock timeout."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("could not write the alert")

    # The module, not the function of the same name that taskops.alerts exports.
    monkeypatch.setattr(sys.modules["taskops.alerts.evaluate"], "observe", fail)


def deleted_answer() -> Answer:
    """An answer (and its question) as the publisher sent it, deleted before the task starts."""
    answer = Answer.objects.create(question=Question.objects.create(title="q", body="b"), body="an answer")
    Question.objects.filter(pk=answer.question.pk).delete()
    return answer


def test_a_start_with_a_missing_row_opens_the_alert(missing_rule: AlertRule) -> None:
    row, _, _ = run_as_worker(moderate_answer, (deleted_answer(),))

    assert (row.state, row.drift) == (State.SKIPPED, Drift.MISSING)
    alert = Alert.objects.get(rule=missing_rule)
    assert (alert.subject, alert.samples) == (moderate_answer.name, [row.pk])


@pytest.mark.usefixtures("observe_fails")
def test_an_alert_that_cannot_be_written_leaves_the_start_as_its_policy_says(
    missing_rule: AlertRule, caplog: pytest.LogCaptureFixture
) -> None:
    errors = recording.error_count()

    with caplog.at_level(logging.ERROR, logger="taskops.alerts"):
        skipped, _, _ = run_as_worker(moderate_answer, (deleted_answer(),))  # on_missing="skip"
        failed, _, _ = run_as_worker(read_body, (deleted_answer().question,))  # on_missing="fail"

    assert (skipped.state, skipped.drift, skipped.stale_action) == (State.SKIPPED, Drift.MISSING, "skip")
    assert (failed.state, failed.drift, failed.stale_action) == (State.FAILURE, Drift.MISSING, "fail")
    assert "MissingObjectError" in failed.exception  # the task's own failure, not the alert's
    assert not Alert.objects.exists()
    assert recording.error_count() == errors + 2
    assert caplog.text.count("alert rules could not be judged at the start of tests.testapp.tasks.") == 2
    assert "DatabaseError: could not write the alert" in caplog.text
