"""The judgement at a task's start: lag and per-ref drift, a pure function.

Input: the message's ``taskops`` header (the digests taken at dispatch), the
rows the Task base fetched, and times. No query, no side effect: the Task
base (:mod:`taskops.celery`) decides what to do with the verdict and the
recorder writes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs
from django.db.models import Model

from taskops.models import Drift
from taskops.staleness import snapshot
from taskops.wire import ModelRef, TaskopsHeader

#: Worse drifts sort later: the worst over a dispatch's refs is its drift.
DRIFT_ORDER = {Drift.PENDING: 0, Drift.UNCHANGED: 1, Drift.CHANGED: 2, Drift.MISSING: 3}


class StaleObjectError(RuntimeError):
    """A referenced row changed since dispatch and the task says ``on_stale="fail"``."""


def worst(drifts: Iterable[str]) -> Drift:
    """The worst of some drifts; no refs at all means nothing could be stale."""
    return max((Drift(value) for value in drifts), key=DRIFT_ORDER.__getitem__, default=Drift.UNCHANGED)


def compare(before: snapshot.Snapshot | None, instance: Model | None, key_id: str) -> tuple[Drift, list[str]]:
    """Drift of one row: ``before`` is its snapshot at dispatch (None: not known), made under key ``key_id``."""
    if instance is None:
        return Drift.MISSING, []
    key = snapshot.key_for(key_id)
    if before is None or key is None:
        # Not taken, or taken under a key this process does not hold: digests
        # under two keys always differ, so comparing would say "changed".
        return Drift.PENDING, []
    changed = snapshot.changed_fields(before, snapshot.take(instance, key))
    return (Drift.CHANGED if changed else Drift.UNCHANGED), changed


def key_note(key_id: str) -> str:
    """Why digests made under ``key_id`` were not compared (for ``Dispatch.notes``)."""
    made_under = f"key {key_id}" if key_id else "no key (an older taskops)"
    return (
        f"drift not checked: the digests were made under {made_under}, not a key of SECRET_KEY "
        "or SECRET_KEY_FALLBACKS (rotated?)"
    )


def cannot_compare(key_id: str, digests: Iterable[snapshot.Snapshot]) -> bool:
    """Digests are there, but under a key this process does not hold."""
    return snapshot.key_for(key_id) is None and any(digests)


@attrs.frozen
class RefVerdict:
    label: str
    pk: Any
    argument: str
    digests: dict[str, str]
    drift: Drift
    changed_fields: list[str]
    likely_race: bool

    def __str__(self) -> str:
        return f"{self.label}:{self.pk}"


@attrs.frozen
class StartVerdict:
    started_at: dt.datetime
    lag: dt.timedelta | None
    drift: Drift
    likely_race: bool
    refs: list[RefVerdict]
    #: What kept the judgement from being complete (for ``Dispatch.notes``).
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> list[RefVerdict]:
        return [ref for ref in self.refs if ref.drift == Drift.CHANGED]

    @property
    def missing(self) -> list[RefVerdict]:
        return [ref for ref in self.refs if ref.drift == Drift.MISSING]


def judge_start(
    header: TaskopsHeader | None,
    objects: dict[ModelRef, Model | None],
    started_at: dt.datetime,
    eta: dt.datetime | None = None,
) -> StartVerdict:
    """Lag and per-ref drift of one attempt (no query).

    ``objects`` maps the refs the Task base fetched to their rows (None: gone);
    a ref of the header that was not fetched (the task stopped first), or
    whose digests were made under a key this process does not hold, stays
    ``pending``. Lag is ``started_at`` minus the later of enqueue time and ETA.
    """
    refs: list[RefVerdict] = []
    in_transaction = header is not None and header.in_transaction
    notes: tuple[str, ...] = ()
    if header is not None:
        key_id = header.digest_key
        if cannot_compare(key_id, (ref.digests for ref in header.refs)):
            notes = (key_note(key_id),)
        for ref in header.refs:
            key = ModelRef(ref.label, ref.pk)
            drift, changed = (
                compare(ref.digests or None, objects[key], key_id) if key in objects else (Drift.PENDING, [])
            )
            race = drift == Drift.MISSING and in_transaction
            refs.append(RefVerdict(ref.label, ref.pk, ref.argument, ref.digests, drift, changed, race))
    else:  # published without recording: only missing rows can be told
        for index, (key, instance) in enumerate(objects.items()):
            drift, changed = compare(None, instance, "")
            refs.append(RefVerdict(key.label, key.pk, f"ref[{index}]", {}, drift, changed, False))
    enqueued_at = header.enqueued_at if header is not None else None
    due = max((moment for moment in (enqueued_at, eta) if moment is not None), default=None)
    # A header that could not be read judged nothing: "not checked", never "unchanged".
    unreadable = header is not None and bool(header.problems) and not refs
    return StartVerdict(
        started_at=started_at,
        lag=(started_at - due) if due is not None else None,
        drift=Drift.PENDING if unreadable else worst(ref.drift for ref in refs),
        likely_race=any(ref.likely_race for ref in refs),
        refs=refs,
        notes=notes,
    )
