"""What an operator sees before confirming a re-dispatch: the chosen objects, or dispatches, as they are now.

For the form's preview, each object of the first page with its last dispatch
of the task (its drift then, and when) and that dispatch judged against the
row as it is now (``judge_pending``). For the replay's confirmation, each
dispatch of the first page judged the same way. What is shown of other
models' rows follows ``Visibility`` (through ``Linker``): a ref the user may
not view is not judged now, and shows as its content type and pk.

Cost, whatever the selection: the objects (one query), their last
dispatches (two), the judgement (two, then one per model class).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.db.models import Max, Model, QuerySet
from django.utils.safestring import SafeString

from taskops.admin.display import ref_line
from taskops.admin.links import Linker, ObjectLink
from taskops.admin.objects import python_pk
from taskops.models import Dispatch, Drift, ObjectRef
from taskops.staleness import PendingVerdict, judge_pending, worst


@attrs.frozen
class Judged:
    """A ref's drift when its dispatch ran, and judged against the row as it is now (None: not shown)."""

    ref: ObjectRef
    link: ObjectLink
    then: Drift
    then_fields: list[str]
    now: Drift | None
    now_fields: list[str]

    @property
    def line(self) -> SafeString:
        """The object on one line, cut by an ellipsis, as the changelist shows it."""
        return ref_line(self.link)


@attrs.frozen
class ObjectState:
    """One chosen object: whether it still exists, its last dispatch of the task, and that dispatch's drift."""

    link: ObjectLink
    #: Whether the row exists now; shown only as ``gone``, which asks ``Visibility``.
    exists: bool
    last: Dispatch | None
    judged: Judged | None

    @property
    def line(self) -> SafeString:
        """The object on one line, cut by an ellipsis, as the changelist shows it."""
        return ref_line(self.link)

    @property
    def when(self) -> dt.datetime | None:
        return self.last.enqueued_at if self.last is not None else None

    @property
    def gone(self) -> bool:
        """The row no longer exists, and the user may know it (``exists`` itself is not for display)."""
        return not self.exists and self.link.visible


@attrs.frozen
class DispatchState:
    """One selected dispatch, its objects judged now; ``now`` is the worst over those the user may view."""

    dispatch: Dispatch
    refs: list[Judged]
    now: Drift | None


def judged_refs(verdict: PendingVerdict, linker: Linker) -> list[Judged]:
    """A verdict's refs, judged now only where the user may view the model."""
    judged = []
    for ref, drift, fields in verdict.refs:
        shown = linker.visibility.may_view(ref.content_type.model_class())
        then = Drift(ref.drift)
        judged.append(
            Judged(ref, linker.ref_link(ref), then, list(ref.changed_fields or []), drift if shown else None, fields)
        )
    return judged


def dispatch_states(dispatches: QuerySet[Dispatch], linker: Linker) -> list[DispatchState]:
    """The dispatches (a page of them: slice the queryset) judged against the rows as they are now."""
    states = []
    for verdict in judge_pending(dispatches):
        refs = judged_refs(verdict, linker)
        shown = [ref.now for ref in refs if ref.now is not None]
        states.append(DispatchState(verdict.dispatch, refs, worst(shown) if shown else None))
    return states


def object_states(model: type[Model], pks: list[str], task_name: str, linker: Linker) -> list[ObjectState]:
    """The objects (a page of pks), each with its last dispatch of ``task_name`` judged now."""
    content_type = ContentType.objects.get_for_model(model)
    wanted = {pk: python_pk(model, pk) for pk in pks}
    rows = model._default_manager.in_bulk([value for value in wanted.values() if value is not None])
    last_ids = (
        ObjectRef.objects.filter(content_type=content_type, object_pk__in=pks, dispatch__task_name=task_name)
        .values("object_pk")
        .annotate(last=Max("dispatch_id"))
    )
    last_of = {row["object_pk"]: row["last"] for row in last_ids}
    verdicts = {v.dispatch.pk: v for v in judge_pending(Dispatch.objects.filter(pk__in=set(last_of.values())))}
    states = []
    for pk, value in wanted.items():
        row: Any = rows.get(value)
        link = linker.link(content_type, pk, str(row) if row is not None else "")
        verdict = verdicts.get(last_of.get(pk, -1))
        judged = None
        if verdict is not None:  # the object's own ref among its last dispatch's
            own = (
                j
                for j in judged_refs(verdict, linker)
                if (j.ref.content_type_id, j.ref.object_pk) == (content_type.pk, pk)
            )
            judged = next(own, None)
        states.append(ObjectState(link, row is not None, verdict.dispatch if verdict else None, judged))
    return states
