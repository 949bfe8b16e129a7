"""The background fan-out: a Celery task that publishes a large re-dispatch in batches.

Acknowledged late and rejected when its worker is lost, so a fan-out whose
worker is killed is delivered again and resumes where it stopped.
"""

from __future__ import annotations

from celery import shared_task

from taskops.models import Redispatch
from taskops.redispatch.publish import publish_pending


@shared_task(name="taskops.redispatch.fan_out", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def fan_out(redispatch_id: int) -> None:
    """Publish what is left of re-dispatch ``redispatch_id``."""
    redispatch = Redispatch.objects.filter(pk=redispatch_id).first()
    if redispatch is not None and redispatch.outcome not in (Redispatch.Outcome.DONE, Redispatch.Outcome.PARTIAL):
        publish_pending(redispatch)
