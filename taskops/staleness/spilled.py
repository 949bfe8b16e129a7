"""The refs of a message whose header left them out, read back from the publisher's record.

A broker caps a message's headers (RabbitMQ: one frame, 128 KiB by
default), so refs over ``TASKOPS["HEADER_BYTES"]`` do not travel in the
``taskops`` header (its ``spilled`` count says how many were left out). The
publisher's record holds them, digests included: the worker reads them from
its ``ObjectRef`` rows, waiting a moment for a write-behind batch that has
not landed yet. Not found in time, they stay unjudged ("not checked"), and
the row says why.
"""

from __future__ import annotations

import time

import attrs
from django.contrib.contenttypes.models import ContentType

from taskops.models import ObjectRef
from taskops.wire import HeaderRef, Invalid, TaskopsHeader
from taskops.wire.decode import normal_pk
from taskops.wire.limits import installed_model

#: How long a worker waits for the publisher's record of refs left out of the header.
RECORD_WAIT_SECONDS = 3.0
#: Characters of a task id the ``Dispatch`` row keeps (Celery allows longer).
TASK_ID_CHARS = 255
#: Between two looks for it.
POLL_SECONDS = 0.1


def with_recorded_refs(header: TaskopsHeader, task_id: str, wait: float = RECORD_WAIT_SECONDS) -> TaskopsHeader:
    """``header`` with the refs it left out, as the publisher recorded them; unchanged if none were left out."""
    if not header.spilled:
        return header
    deadline = time.monotonic() + wait
    refs = recorded_refs(task_id)
    while len(refs) < header.spilled and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        refs = recorded_refs(task_id)
    if len(refs) < header.spilled:
        problem = (
            f"{header.spilled} refs over TASKOPS['HEADER_BYTES'] were left out of the message, "
            f"and the publisher's record of them was not found (found {len(refs)}): not checked"
        )
        return attrs.evolve(header, refs=(), problems=(*header.problems, problem))
    return attrs.evolve(header, refs=tuple(header.refs) + refs)


def recorded_refs(task_id: str) -> tuple[HeaderRef, ...]:
    """The refs recorded for ``task_id``, with their digests (one query)."""
    rows = ObjectRef.objects.filter(dispatch__task_id=task_id[:TASK_ID_CHARS]).order_by("pk")
    refs = []
    for content_type_id, object_pk, argument, digests in rows.values_list(
        "content_type_id", "object_pk", "argument", "digests"
    ):
        content_type = ContentType.objects.get_for_id(content_type_id)
        label = f"{content_type.app_label}.{content_type.model}"
        model = installed_model(label)
        pk = normal_pk(model, object_pk) if model is not None else object_pk
        if not isinstance(pk, Invalid):
            refs.append(HeaderRef(label, pk, argument, dict(digests)))
    return tuple(refs)
