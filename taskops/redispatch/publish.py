"""Saving a checked re-dispatch and publishing its calls, in batches that resume where they stopped.

Each call is a :class:`~taskops.models.RedispatchItem` with a task id chosen
before it is published (derived from the re-dispatch and the position), so a
fan-out that was stopped midway (a killed worker, a broker outage) and runs
again publishes what is left under the same task ids: every object gets one
task id, never two. Progress is saved after every batch, so at most one batch
is published again. The rows a batch needs are fetched once per batch (one
query per model), and the instances go out as such, so the recorder
snapshots them in memory.

A batch cut short is published again, so up to a batch of messages may be
on the broker twice. Nothing here can tell which of them were: the broker
cannot be asked whether it holds a message, and the publisher's record of
it is written in the background by a process that may have died with it.
So publishing is at least once, and running is at most once per attempt:
each message carries its item's position, and the worker claims the item
before the task body runs (:mod:`taskops.recording.deliveries`), skipping a
second delivery of an attempt that already started.

Whoever publishes holds a :class:`Lease`: the heartbeat it last wrote,
renewed before every batch. A re-dispatch whose heartbeat is older than
``TASKOPS["REDISPATCH_STALLED_AFTER"]`` (its fan-out's worker was killed,
and the broker lost the message) may be taken over by a resume, which writes
a heartbeat of its own: the old publisher, if it was only slow, finds its
lease gone at its next batch and stops.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from itertools import islice
from typing import Any

import attrs
from celery import current_app
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.db import transaction
from django.db.models import Count, F, Model, QuerySet
from django.utils import timezone

from taskops.conf import taskops_settings
from taskops.models import Dispatch, Redispatch, RedispatchItem
from taskops.recording.records import OPERATOR_HEADER
from taskops.redispatch.plan import Draft, Options
from taskops.redispatch.replays import Skip, Skipped, Stored, read_stored
from taskops.redispatch.signature import binding_problem
from taskops.wire import CodecError, loads, resolve_refs, substitute

#: Names task ids of re-dispatched calls (uuid5 of the re-dispatch and the position).
TASK_ID_NAMESPACE = uuid.UUID("6c1f3f5e-6b8e-4f0e-9f2a-2f1a7f3f0c11")
#: Items written per INSERT when a re-dispatch is saved.
SAVE_CHUNK = 1_000
#: Outcomes no fan-out publishes for any more.
FINISHED = (Redispatch.Outcome.DONE, Redispatch.Outcome.PARTIAL)

logger = logging.getLogger("taskops.redispatch")


def task_id_for(redispatch_id: int, position: int) -> str:
    """The task id of one call, the same however often its publishing is tried."""
    return str(uuid.uuid5(TASK_ID_NAMESPACE, f"{redispatch_id}:{position}"))


def save(draft: Draft) -> Redispatch:
    """The audit row, its items (written in chunks) and a ``LogEntry``, in one transaction."""
    with transaction.atomic():
        redispatch = Redispatch.objects.create(
            user=draft.user,
            created_at=timezone.now(),
            reason=draft.reason,
            kind=draft.kind,
            task_name=draft.task_name,
            plan=draft.plan,
            options=draft.options.as_json(),
            total=draft.total,
        )
        redispatch.heartbeat_at = redispatch.created_at
        redispatch.save(update_fields=["heartbeat_at"])
        positions = iter(enumerate(draft.targets()))
        while chunk := list(islice(positions, SAVE_CHUNK)):
            RedispatchItem.objects.bulk_create(
                RedispatchItem(redispatch=redispatch, position=p, target=t, task_id=task_id_for(redispatch.pk, p))
                for p, t in chunk
            )
        LogEntry.objects.log_actions(
            user_id=draft.user.pk,
            queryset=[redispatch],
            action_flag=ADDITION,
            change_message=audit_message(redispatch, draft),
            single_object=True,
        )
    return redispatch


def audit_message(redispatch: Redispatch, draft: Draft) -> str:
    what = draft.task_name or "their tasks"
    return f"{redispatch.get_kind_display()}: {draft.total} call(s) of {what}. Reason: {draft.reason}"


class Superseded(Exception):
    """Another publisher took the re-dispatch over (a resume found it stalled): this one stops."""


@attrs.define
class Lease:
    """A publisher's hold on a re-dispatch: the heartbeat it last wrote, while it is ``RUNNING``."""

    redispatch_id: int
    beat: dt.datetime

    @classmethod
    def take(cls, redispatch_id: int) -> Lease | None:
        """Start publishing (``RUNNING``, a fresh heartbeat) unless it is finished; the one before stops."""
        now = timezone.now()
        unfinished = Redispatch.objects.filter(pk=redispatch_id).exclude(outcome__in=FINISHED)
        if not unfinished.update(outcome=Redispatch.Outcome.RUNNING, heartbeat_at=now):
            return None
        return cls(redispatch_id, now)

    def held(self) -> QuerySet[Redispatch]:
        """The re-dispatch, if this lease still holds it (for an UPDATE that only its holder makes)."""
        return Redispatch.objects.filter(
            pk=self.redispatch_id, outcome=Redispatch.Outcome.RUNNING, heartbeat_at=self.beat
        )

    def renew(self) -> None:
        """Write a new heartbeat, one UPDATE; raise :class:`Superseded` if another publisher took over."""
        now = timezone.now()
        if not self.held().update(heartbeat_at=now):
            raise Superseded(f"re-dispatch #{self.redispatch_id} was taken over")
        self.beat = now


def publish_pending(redispatch: Redispatch) -> Redispatch:
    """Publish every call not published yet, a batch at a time; the re-dispatch ends DONE or PARTIAL.

    Raises what stopped it (the re-dispatch is then FAILED, and can be resumed). Returns quietly
    when it is finished already, or when another publisher took it over midway.
    """
    lease = Lease.take(redispatch.pk)
    if lease is None:
        redispatch.refresh_from_db()
        return redispatch
    size = max(1, int(taskops_settings.REDISPATCH_BATCH_SIZE))
    try:
        while batch := list(redispatch.items.filter(state=RedispatchItem.State.PENDING).order_by("position")[:size]):
            publish_batch(redispatch, batch, lease)
    except Superseded:
        logger.warning("taskops: re-dispatch #%s was taken over by a resume; this fan-out stops", redispatch.pk)
        redispatch.refresh_from_db()
        return redispatch
    except Exception as exc:
        lease.held().update(outcome=Redispatch.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    redispatch.refresh_from_db()
    outcome = Redispatch.Outcome.PARTIAL if redispatch.skipped else Redispatch.Outcome.DONE
    lease.held().update(outcome=outcome, finished_at=timezone.now(), error="")
    redispatch.refresh_from_db()
    return redispatch


def publish_batch(redispatch: Redispatch, items: list[RedispatchItem], lease: Lease) -> None:
    """Renew the lease, publish one batch; then mark its items and count them, in one transaction.

    Only items still pending are marked and counted, so a batch that two publishers sent (a slow
    one and the resume that took it over) is counted once.
    """
    lease.renew()
    calls = replay_calls(items) if redispatch.kind == Redispatch.Kind.REPLAY else object_calls(redispatch, items)
    options = Options.from_json(redispatch.options)
    published: list[int] = []
    skipped: dict[str, list[int]] = {}
    for item, call in zip(items, calls, strict=True):
        if isinstance(call, str):
            skipped.setdefault(call, []).append(item.pk)
            continue
        task, args, kwargs, source = call
        operator = {"by": redispatch.user_id, "op": redispatch.pk, "of": source, "at": item.position}
        task.apply_async(
            args=args,
            kwargs=kwargs,
            task_id=item.task_id,
            headers={OPERATOR_HEADER: operator},
            **publish_options(options),
        )
        published.append(item.pk)
    pending = RedispatchItem.objects.filter(state=RedispatchItem.State.PENDING)
    with transaction.atomic():
        published_now = pending.filter(pk__in=published).update(state=RedispatchItem.State.PUBLISHED)
        skipped_now = sum(
            pending.filter(pk__in=pks).update(state=RedispatchItem.State.SKIPPED, note=note[:255])
            for note, pks in skipped.items()
        )
        Redispatch.objects.filter(pk=redispatch.pk).update(
            published=F("published") + published_now, skipped=F("skipped") + skipped_now
        )


def publish_options(options: Options) -> dict[str, Any]:
    chosen: dict[str, Any] = {"queue": options.queue or None}
    if options.countdown is not None:
        chosen["countdown"] = options.countdown
    if options.priority is not None:
        chosen["priority"] = options.priority
    return {key: value for key, value in chosen.items() if value is not None}


#: One call to publish: (task, args, kwargs, source dispatch id), or why it is skipped.
Call = tuple[Any, tuple[Any, ...], dict[str, Any], int | None] | str


def object_calls(redispatch: Redispatch, items: list[RedispatchItem]) -> Iterator[Call]:
    """The batch's calls of a task for objects: rows fetched in one query, gone ones skipped."""
    plan = redispatch.plan
    task = current_app.tasks[redispatch.task_name]
    model: type[Model] = apps.get_model(plan["model"])
    many = bool(plan.get("many"))
    wanted = {pk for item in items for pk in (loads(item.target) if many else [item.target])}
    rows = in_bulk(model, wanted)
    extra = loads(plan.get("kwargs") or "{}")
    for item in items:
        pks = loads(item.target) if many else [item.target]
        found = [rows.get(str(pk)) for pk in pks]
        gone = [str(pk) for pk, row in zip(pks, found, strict=True) if row is None]
        if gone:
            yield f"{Skip.OBJECTS_GONE}: {model._meta.label_lower}:{', '.join(gone[:5])}"
            continue
        value: Any = found if many else found[0]
        yield task, (), {**extra, plan["parameter"]: value}, None


def in_bulk(model: type[Model], pks: set[Any]) -> dict[str, Model]:
    """Rows by their pk as text (the form items keep), one query."""
    field = model._meta.pk
    assert field is not None
    values = [field.to_python(pk) for pk in pks]
    return {str(row.pk): row for row in model._default_manager.filter(pk__in=values)}


def replay_calls(items: list[RedispatchItem]) -> Iterator[Call]:
    """The batch's replays: stored arguments decoded, their rows fetched afresh (one query per model).

    A dispatch that cannot be replayed (``replays.read_stored``: its task, a
    redaction, arguments that no longer decode) is skipped with its reason;
    the rest of the batch goes on.
    """
    sources = Dispatch.objects.in_bulk([int(item.target) for item in items])
    stored = {pk: read_stored(d.task_name, d.redacted, d.args, d.kwargs) for pk, d in sources.items()}
    refs = {ref for read in stored.values() if isinstance(read, Stored) for ref in read.refs}
    rows = resolve_refs(refs) if refs else {}
    existing = {ref for ref, row in rows.items() if row is not None}
    for item in items:
        dispatch = sources.get(int(item.target))
        if dispatch is None:
            yield Skip.SOURCE_GONE
            continue
        read = stored[dispatch.pk]
        if isinstance(read, Skipped):
            yield read.note
            continue
        gone = read.gone(existing)
        if gone:
            yield f"{Skip.OBJECTS_GONE}: {', '.join(gone[:5])}"
            continue
        task = current_app.tasks[dispatch.task_name]
        try:
            call_args = tuple(substitute(read.args, rows, root="args"))
            call_kwargs = substitute(read.kwargs, rows, root="kwargs")
        except CodecError as error:  # an attrs class that changed since refuses the stored data
            yield Skipped(Skip.UNDECODABLE, str(error)[:200]).note
            continue
        unfit = binding_problem(task, call_args, call_kwargs)  # the task changed since: Celery would refuse it
        if unfit:
            yield f"{Skip.ARGUMENTS_UNFIT}: {unfit}"
            continue
        yield task, call_args, call_kwargs, dispatch.pk


def skipped_by_note(redispatch: Redispatch) -> dict[str, int]:
    """How many calls were skipped, by note."""
    rows = redispatch.items.filter(state=RedispatchItem.State.SKIPPED).values("note").annotate(calls=Count("pk"))
    return {row["note"]: row["calls"] for row in rows.order_by("note")}
