"""The periodic evaluation, for Celery beat (``taskops.alerts.evaluate``)."""

from __future__ import annotations

from celery import shared_task

from taskops.alerts.evaluate import evaluate


@shared_task(name="taskops.alerts.evaluate", ignore_result=True)
def evaluate_rules() -> int:
    """One round over every enabled rule; the number of alerts open after it."""
    return evaluate().open_count
