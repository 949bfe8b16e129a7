"""Resuming a re-dispatch: who may, and which ones may be taken over.

A resume publishes calls, so it passes the service's own checks again, for
the user who resumes (not the one who started it): the re-dispatch
permission, view permission on every model its calls involve, and, for a
task run for objects, the task still allowed (a replay skips, call by call,
the tasks no longer allowed, as when it started).

A stopped re-dispatch (``FAILED``) may be resumed; so may a queued or
publishing one without progress for ``TASKOPS["REDISPATCH_STALLED_AFTER"]``
seconds: its fan-out's worker was killed and the broker lost the message
(kombu's filesystem transport removes a message when it is read; Redis
gives it back only after its visibility timeout), so nothing would ever
finish it. Cost: a few permission checks; a replay's models, one query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, Q
from django.db.models.functions import Cast
from django.utils import timezone

from taskops.conf import taskops_settings
from taskops.models import ObjectRef, Redispatch
from taskops.redispatch import policy
from taskops.redispatch.plan import (
    GENERAL,
    MayView,
    Problems,
    check_argument_models,
    find_model,
    find_task,
    user_may_view,
)
from taskops.wire import loads

#: Outcomes of a re-dispatch that something is (or should be) publishing.
UNDER_WAY = (Redispatch.Outcome.QUEUED, Redispatch.Outcome.RUNNING)


def stalled_since() -> dt.datetime:
    """Progress older than this is none at all (``TASKOPS["REDISPATCH_STALLED_AFTER"]``)."""
    return timezone.now() - dt.timedelta(seconds=float(taskops_settings.REDISPATCH_STALLED_AFTER))


def last_progress(redispatch: Redispatch) -> dt.datetime:
    return redispatch.heartbeat_at or redispatch.created_at


def is_stalled(redispatch: Redispatch) -> bool:
    """Queued or publishing, without progress for ``REDISPATCH_STALLED_AFTER`` seconds."""
    return redispatch.outcome in UNDER_WAY and last_progress(redispatch) < stalled_since()


def may_be_taken_over() -> Q:
    """Re-dispatches a resume may take: stopped ones, and stalled ones (for one conditional UPDATE)."""
    cutoff = stalled_since()
    quiet = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    return Q(outcome=Redispatch.Outcome.FAILED) | (Q(outcome__in=UNDER_WAY) & quiet)


def check_resume(redispatch: Redispatch, user: Any, may_view: MayView | None = None) -> None:
    """Raise :class:`~taskops.redispatch.plan.Refused` if ``user`` may not resume ``redispatch``.

    ``may_view``: whether the user may view a model; the admin passes its ``ModelAdmin``'s view
    permission, as for a new re-dispatch; by default the user's own model permission.
    """
    may_view = may_view or user_may_view(user)
    problems = Problems()
    if not policy.may_redispatch(user):
        problems.add(GENERAL, f"You do not have the permission to re-dispatch tasks ({policy.PERMISSION}).")
    if redispatch.kind == Redispatch.Kind.OBJECTS:
        find_task(redispatch.task_name, problems)
        find_model(str(redispatch.plan.get("model", "")), may_view, problems)
        check_argument_models(loads(redispatch.plan.get("kwargs") or "{}"), may_view, problems)
    else:
        for label in replayed_models(redispatch):
            find_model(label, may_view, problems, field="dispatches")
    problems.raise_any()


def replayed_models(redispatch: Redispatch) -> list[str]:
    """The labels of the models the source dispatches of a replay reference (one query)."""
    sources = redispatch.items.annotate(source=Cast("target", BigIntegerField())).values("source")
    types = ObjectRef.objects.filter(dispatch_id__in=sources).values("content_type")
    models = (content_type.model_class() for content_type in ContentType.objects.filter(pk__in=types))
    return sorted(model._meta.label_lower for model in models if model is not None)
