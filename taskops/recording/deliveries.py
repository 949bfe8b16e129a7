"""A re-dispatched call runs at most once per attempt, however often its message is delivered.

The fan-out publishes at least once: a batch cut short (a killed worker, a
broker that stopped answering) is published again, under the same task ids,
because nothing can tell which of its messages reached the broker
(:mod:`taskops.redispatch.publish`). So the worker makes running idempotent:
an operator message names its :class:`~taskops.models.RedispatchItem`
(``"op"`` and ``"at"`` in the operator header), and before the task runs
the pool child claims the item for the attempt (``retries``) in one
conditional UPDATE. Only one delivery of an attempt wins, even when two run
at the same moment on two workers; a retry is a newer attempt and wins
again.

The claim is made in ``task_prerun``, before Celery stores ``STARTED`` for
a tracked task: a losing delivery keeps what the result backend held (the
first delivery's result) and puts it back after Celery's ``STARTED``, then
the Task base ends it with Celery's ``Ignore`` (:func:`duplicate_delivery`):
the body never runs, no result is stored, the row keeps the first
delivery's state and gets the note "duplicate delivery skipped". (Marking the
row ``SKIPPED`` would hide the run that happened: a finished state is final,
and a running one would be frozen at ``SKIPPED``.)

A message the broker delivers again itself (``redelivered``: an
``acks_late`` task whose worker was lost before it acknowledged) is not a
duplicate publish: it runs, as Celery promises for such tasks.

Cost: one UPDATE by primary key per operator message; nothing for others.
If the database cannot be asked, the delivery runs (as without the claim).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Ignore
from django.db import DatabaseError
from django.db.models import Q, Value
from django.db.models.functions import Concat

from taskops.models import Dispatch, RedispatchItem
from taskops.recording.records import OPERATOR_HEADER, clipped
from taskops.recording.worker import forget_attempt

logger = logging.getLogger("taskops.recording")

#: The note a duplicate delivery leaves on its dispatch and its re-dispatch item.
DUPLICATE_NOTE = "duplicate delivery skipped"

#: Duplicate deliveries this process is running: their item, and what the result backend held before them.
_duplicates: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}


def item_of(request: Any) -> tuple[int, int] | None:
    """The (re-dispatch id, position) an operator message names, or None."""
    operator = getattr(request, OPERATOR_HEADER, None)
    if not isinstance(operator, dict):
        return None
    op, at = operator.get("op"), operator.get("at")
    if isinstance(op, int) and isinstance(at, int) and not isinstance(op, bool) and not isinstance(at, bool):
        return op, at
    return None


def claim(redispatch_id: int, position: int, task_id: str, retries: int) -> bool:
    """Whether this delivery is the first of attempt ``retries`` of the item (and may run)."""
    item = RedispatchItem.objects.filter(redispatch_id=redispatch_id, position=position, task_id=task_id)
    newer = Q(started_attempt__isnull=True) | Q(started_attempt__lt=retries)
    if item.filter(newer).update(started_attempt=retries):
        return True
    return not item.exists()  # an item deleted since (its re-dispatch was): nothing to tell, it runs


def claim_on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """Claim the item of an operator message; remember a duplicate, with the result backend's state."""
    request = getattr(task, "request", None)
    if request is None or not task_id or request.is_eager:
        return
    item = item_of(request)
    if item is None:
        return
    try:
        if claim(*item, clipped(task_id), int(request.retries or 0)) or redelivered(request):
            return
        _duplicates[task_id] = (item, task.backend.get_task_meta(task_id))
    except DatabaseError:
        logger.warning("taskops: could not check %s for a duplicate delivery; it runs", task_id, exc_info=True)


def redelivered(request: Any) -> bool:
    """Whether the broker delivers this message again (it was never acknowledged), not a second publish."""
    return bool((getattr(request, "delivery_info", None) or {}).get("redelivered"))


def is_duplicate(task_id: str | None) -> bool:
    return bool(task_id) and task_id in _duplicates


def duplicate_delivery(task: Any) -> Ignore:
    """End a duplicate delivery: its record untouched but a note, the backend's result put back."""
    request = task.request
    task_id = request.id
    (redispatch_id, position), before = _duplicates.pop(task_id)
    forget_attempt(task_id)
    logger.warning("taskops: %s[%s] skipped: %s (attempt %s)", task.name, task_id, DUPLICATE_NOTE, request.retries)
    try:
        if before.get("status") not in (None, "PENDING"):  # what the first delivery stored, before Celery's STARTED
            task.backend.store_result(
                task_id, before.get("result"), before["status"], traceback=before.get("traceback"), request=request
            )
        noted = Concat("notes", Value(f"; {DUPLICATE_NOTE}"))
        Dispatch.objects.filter(task_id=clipped(task_id)).exclude(notes="").update(notes=noted)
        Dispatch.objects.filter(task_id=clipped(task_id), notes="").update(notes=DUPLICATE_NOTE)
        RedispatchItem.objects.filter(redispatch_id=redispatch_id, position=position).update(note=DUPLICATE_NOTE)
    except DatabaseError:
        logger.warning("taskops: could not note the duplicate delivery of %s", task_id, exc_info=True)
    return Ignore(DUPLICATE_NOTE)
