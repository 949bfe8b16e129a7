"""Re-dispatch: the one service every path calls (the admin's form and actions, ``taskops_redispatch``).

    draft = plan.for_objects(user=..., task_name=..., model_label=..., pks=[...], reason=...)
    redispatch = submit(draft)      # checked before, published now or in the background, audited

- :mod:`~taskops.redispatch.plan`: every check, before anything is written (:class:`Refused`);
- :mod:`~taskops.redispatch.signature`: what a task takes, for the generic form;
- :mod:`~taskops.redispatch.policy`: allowed tasks and models, permissions;
- :mod:`~taskops.redispatch.publish`: the audit row, its items, publishing in resumable batches;
- :mod:`~taskops.redispatch.resumption`: who may resume, which re-dispatches have stalled;
- :mod:`~taskops.redispatch.tasks`: the background fan-out.

No HTTP here: the pages live in :mod:`taskops.admin`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from taskops.conf import taskops_settings
from taskops.models import Redispatch
from taskops.redispatch.plan import Draft, MayView, Options, Refused, for_objects, replay
from taskops.redispatch.publish import publish_pending, save
from taskops.redispatch.resumption import check_resume, may_be_taken_over
from taskops.redispatch.tasks import fan_out

__all__ = ["Draft", "Options", "Refused", "for_objects", "in_background", "replay", "resume", "submit"]

logger = logging.getLogger("taskops.redispatch")

#: What a broker that does not answer raises at a publish (kombu wraps the transport's errors).
BROKER_ERRORS = (OperationalError, OSError)


def in_background(draft: Draft) -> bool:
    """Whether the draft is published by the background fan-out rather than at the call."""
    return draft.total > int(taskops_settings.REDISPATCH_BACKGROUND_OVER)


def submit(draft: Draft) -> Redispatch:
    """Save the audit (row, items, ``LogEntry``) and publish: now, or in the background when large.

    A broker that does not answer does not lose the audit: the re-dispatch
    comes back ``FAILED`` with the error, what was published counted, and
    :func:`resume` publishes the rest.
    """
    redispatch = save(draft)
    if in_background(draft):
        transaction.on_commit(lambda: start_fan_out(redispatch))
        return redispatch
    try:
        return publish_pending(redispatch)
    except BROKER_ERRORS:
        logger.exception("taskops: re-dispatch #%s stopped: the broker did not answer", redispatch.pk)
        redispatch.refresh_from_db()
        return redispatch


def resume(redispatch: Redispatch, user: Any, may_view: MayView | None = None) -> bool:
    """Publish, in the background, what a stopped or stalled re-dispatch left unpublished.

    ``user`` (who resumes) passes the service's checks again (``may_view`` as in
    :func:`for_objects`), or :class:`Refused` is raised and nothing is published. A stopped
    one (``FAILED``) is resumed, and so is a queued or publishing one without progress for
    ``TASKOPS["REDISPATCH_STALLED_AFTER"]`` seconds (its fan-out was lost with its worker).
    Only once: it is queued again in one conditional UPDATE that also writes a heartbeat, so
    two operators (or a double click) start one fan-out, not two, and a fan-out that was only
    slow stops at its next batch. Returns whether this call resumed it.
    """
    check_resume(redispatch, user, may_view)
    taken = Redispatch.objects.filter(pk=redispatch.pk).filter(may_be_taken_over())
    if not taken.update(outcome=Redispatch.Outcome.QUEUED, heartbeat_at=timezone.now()):
        return False
    return start_fan_out(redispatch)


def start_fan_out(redispatch: Redispatch) -> bool:
    """Send the background fan-out (to ``TASKOPS["REDISPATCH_QUEUE"]``, or the default queue).

    If the broker does not answer, the re-dispatch is ``FAILED`` with the
    error (it can be resumed), never left queued with nothing to run it.
    """
    try:
        fan_out.apply_async((redispatch.pk,), queue=taskops_settings.REDISPATCH_QUEUE)
    except BROKER_ERRORS as exc:
        logger.exception("taskops: the fan-out of re-dispatch #%s could not be queued", redispatch.pk)
        error = f"the fan-out could not be queued: {type(exc).__name__}: {exc}"
        Redispatch.objects.filter(pk=redispatch.pk).update(outcome=Redispatch.Outcome.FAILED, error=error[:2000])
        return False
    return True
