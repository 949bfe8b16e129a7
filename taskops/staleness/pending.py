"""Pending work judged against the current database: "would run on stale data".

Used by the dashboard and the alert sweep. Two queries for the dispatches and
their refs, then one per model class for the current rows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import attrs
from django.db.models import Model, QuerySet

from taskops.models import Dispatch, Drift, ObjectRef
from taskops.staleness.judge import cannot_compare, compare, key_note, worst
from taskops.wire import json_pk


@attrs.frozen
class PendingVerdict:
    """How a queued dispatch would find its rows if it started now."""

    dispatch: Dispatch
    drift: Drift
    #: ``(ref, drift, changed fields)`` for each of the dispatch's refs.
    refs: list[tuple[ObjectRef, Drift, list[str]]]
    #: What kept the judgement from being complete (digests under a key this process does not hold).
    notes: tuple[str, ...] = ()


def judge_pending(dispatches: QuerySet[Dispatch]) -> list[PendingVerdict]:
    """Judge dispatches against the current database; digests are compared with ``ObjectRef.digests``.

    A ref whose digests were made under a key this process does not hold
    stays ``pending``, and the verdict's ``notes`` say why.
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
        judged: list[tuple[ObjectRef, Drift, list[str]]] = []
        for ref in row.refs.all():
            ref_model = ref.content_type.model_class()
            found = current.get((ref_model, ref.object_pk)) if ref_model is not None else None
            drift, changed = compare(ref.digests or None, found, ref.digest_key)
            judged.append((ref, drift, changed))
        notes = tuple(
            sorted({key_note(ref.digest_key) for ref, _, _ in judged if cannot_compare(ref.digest_key, [ref.digests])})
        )
        drift = worst(drift for _, drift, _ in judged)
        verdicts.append(PendingVerdict(dispatch=row, drift=drift, refs=judged, notes=notes))
    return verdicts
