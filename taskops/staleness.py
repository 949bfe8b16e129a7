"""Lag and drift: at a task's start, and for work still waiting in the queue.

At start the worker needs no read of the publisher's rows: the snapshot
digests travel in the message's ``taskops`` header, and the current digests
come from the instances the Task base already fetched.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import attrs
from django.db.models import Model, QuerySet
from django.utils import timezone

from taskops import snapshot
from taskops.models import Dispatch, Drift, ObjectRef
from taskops.refs import ModelRef, json_pk

#: Worse drifts sort later: the worst over a dispatch's refs is its drift.
DRIFT_ORDER = {Drift.PENDING: 0, Drift.UNCHANGED: 1, Drift.CHANGED: 2, Drift.MISSING: 3}


class StaleObjectError(RuntimeError):
    """A referenced row changed since dispatch and the task says ``on_stale="fail"``."""


def worst(drifts: list[str]) -> Drift:
    """The worst of some drifts; no refs at all means nothing could be stale."""
    return max((Drift(value) for value in drifts), key=DRIFT_ORDER.__getitem__, default=Drift.UNCHANGED)


def compare(before: snapshot.Snapshot | None, instance: Model | None) -> tuple[Drift, list[str]]:
    """Drift of one row: ``before`` is its snapshot at dispatch (None: not known)."""
    if instance is None:
        return Drift.MISSING, []
    if before is None:
        return Drift.PENDING, []
    changed = snapshot.changed_fields(before, snapshot.take(instance))
    return (Drift.CHANGED if changed else Drift.UNCHANGED), changed


# --- at start ------------------------------------------------------------------


@attrs.frozen
class RefVerdict:
    label: str
    pk: Any
    argument: str
    digests: dict[str, str]
    drift: str
    changed_fields: list[str]
    likely_race: bool


@attrs.frozen
class StartVerdict:
    started_at: dt.datetime
    lag: dt.timedelta | None
    drift: str
    likely_race: bool
    refs: list[RefVerdict]

    @property
    def changed(self) -> list[RefVerdict]:
        return [ref for ref in self.refs if ref.drift == Drift.CHANGED]


def _parse(value: Any) -> dt.datetime | None:
    from taskops.recording import parse_time

    return parse_time(value)


def judge_start(request: Any, objects: dict[ModelRef, Model | None], started_at: dt.datetime) -> StartVerdict:
    """Lag and per-ref drift of the attempt described by ``request`` (no query)."""
    from taskops.recording import header_of

    header = header_of(request)
    in_transaction = bool(header and header.get("tx"))
    refs: list[RefVerdict] = []
    if header is not None:
        for label, pk, argument, digests in header.get("refs") or ():
            ref = ModelRef(label, pk)
            drift, changed = compare(digests or None, objects.get(ref)) if ref in objects else (Drift.PENDING, [])
            race = drift == Drift.MISSING and in_transaction
            refs.append(RefVerdict(label, pk, argument, digests or {}, drift, changed, race))
    else:  # published without recording: only missing rows can be told
        for index, (ref, instance) in enumerate(objects.items()):
            drift, changed = compare(None, instance)
            refs.append(RefVerdict(ref.label, ref.pk, f"ref[{index}]", {}, drift, changed, False))
    enqueued_at = _parse(header.get("enqueued_at")) if header else None
    eta = _parse(getattr(request, "eta", None))
    due = max((moment for moment in (enqueued_at, eta) if moment is not None), default=None)
    return StartVerdict(
        started_at=started_at,
        lag=(started_at - due) if due is not None else None,
        drift=worst([ref.drift for ref in refs]),
        likely_race=any(ref.likely_race for ref in refs),
        refs=refs,
    )


#: Request attribute holding the verdict between resolution and the start's record.
VERDICT_KEY = "taskops_verdict"


def note_resolved(task: Any, objects: dict[ModelRef, Model | None]) -> StartVerdict:
    """Judge the attempt as soon as its refs are resolved, before any policy can stop it."""
    from taskops import recording

    request = task.request
    attempt = recording._attempts.get(request.id or "")
    started_at = attempt.started_at if attempt is not None else timezone.now()
    verdict = judge_start(request, objects, started_at)
    setattr(request, VERDICT_KEY, verdict)
    if verdict.likely_race and recording.is_recorded_run(task):
        # Said now: the worker's writes may have to wait for the publisher's transaction.
        recording.logger.warning(
            "taskops: %s[%s] started before its referenced rows were committed (likely race): %s",
            task.name,
            request.id,
            ", ".join(f"{ref.label}:{ref.pk}" for ref in verdict.refs if ref.drift == Drift.MISSING),
        )
    return verdict


def check_at_start(task: Any, objects: dict[ModelRef, Model | None]) -> None:
    """Record the attempt's start and drift, then apply the task's ``on_stale`` policy."""
    from taskops import recording

    request = task.request
    verdict = getattr(request, VERDICT_KEY, None) or note_resolved(task, objects)
    policy = task.on_stale if verdict.drift == Drift.CHANGED else ""
    if recording.is_recorded_run(task):
        with recording.guarded(f"recording the start of {request.id}", in_signal=False):
            recording.record_start(task, verdict, policy)
    if policy in ("", "run"):
        return
    reason = f"{task.name}: referenced object(s) changed since dispatch: " + ", ".join(
        f"{ref.label}:{ref.pk} ({', '.join(ref.changed_fields)})" for ref in verdict.changed
    )
    if policy == "skip":
        task.skip(reason)
    if policy == "retry":
        from taskops.codec import substitute

        # Fresh instances go out again, so the next attempt is judged against them.
        raise task.retry(
            args=substitute(list(request.args or ()), objects, root="args"),
            kwargs=substitute(request.kwargs or {}, objects, root="kwargs"),
        )
    raise StaleObjectError(reason)


# --- pending work --------------------------------------------------------------


@attrs.frozen
class PendingVerdict:
    """How a queued dispatch would find its rows if it started now."""

    dispatch: Dispatch
    drift: Drift
    #: ``(ref, drift, changed fields)`` for each of the dispatch's refs.
    refs: list[tuple[ObjectRef, str, list[str]]]


def judge_pending(dispatches: QuerySet[Dispatch]) -> list[PendingVerdict]:
    """Judge dispatches against the current database: "would run on stale data".

    Two queries for the dispatches and their refs, then one per model class
    for the current rows; digests are compared with ``ObjectRef.digests``.
    """
    rows = list(dispatches.prefetch_related("refs__content_type"))
    pks_by_model: dict[type[Model], set[Any]] = defaultdict(set)
    for row in rows:
        for ref in row.refs.all():
            model = ref.content_type.model_class()
            if model is not None:
                pks_by_model[model].add(ref.object_pk)
    current: dict[tuple[type[Model], str], Model] = {}
    for model, pks in pks_by_model.items():
        for instance in model._default_manager.filter(pk__in=list(pks)):
            current[(model, str(json_pk(instance.pk)))] = instance
    verdicts = []
    for row in rows:
        judged: list[tuple[ObjectRef, str, list[str]]] = []
        for ref in row.refs.all():
            ref_model = ref.content_type.model_class()
            found = current.get((ref_model, ref.object_pk)) if ref_model is not None else None
            drift, changed = compare(ref.digests or None, found)
            judged.append((ref, str(drift), changed))
        verdicts.append(PendingVerdict(dispatch=row, drift=worst([drift for _, drift, _ in judged]), refs=judged))
    return verdicts
