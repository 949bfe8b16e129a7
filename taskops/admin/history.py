"""An object's task history: every dispatch that referenced it, newest first.

A row of a model in a multi-table inheritance chain (``Restaurant`` and its
parent ``Place``) is one row under several models: its history holds the
dispatches recorded under any of them. What the page says of the object
itself (its ``str()``, whether it still exists) follows
``visibility.Visibility``.

Cost per page, however many dispatches referenced the object: one query for
the page of refs with their dispatches (on the ``(content_type, object_pk,
-dispatch)`` index, ``content_type IN`` the chain's types), one capped count
(``EstimatedCountPaginator``), one for the object itself when the user may
view it; the rows' links cost one ``reverse`` in all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Page
from django.db.models import Model
from django.utils.safestring import SafeString

from taskops.admin.display import drift_badge, format_duration, format_time, state_badge
from taskops.admin.links import Linker, ObjectLink, model_label
from taskops.admin.objects import python_pk, same_row_content_types, stored_pk
from taskops.admin.paginator import EstimatedCountPaginator
from taskops.models import Dispatch, ObjectRef


@attrs.frozen
class HistoryTarget:
    """The object a history page is about: its label, its current row, its links."""

    content_type: ContentType
    object_pk: str
    link: ObjectLink
    #: The row now; None when it is gone or not shown to this user.
    instance: Model | None
    #: The row still exists; None when that is not shown to this user (or its model is not installed).
    exists: bool | None


def history_target(
    linker: Linker, content_type: ContentType, object_pk: str, refs: Iterable[ObjectRef]
) -> HistoryTarget:
    """The object now (or None if gone or not installed), linked to its admin page.

    Its label is its ``str()`` now, or, once it is gone, the latest one among
    ``refs`` (what the dispatches recorded). Users who may not view its
    model see neither, nor whether it exists.
    """
    model = content_type.model_class()
    if model is None or not linker.visibility.may_view(model):
        return HistoryTarget(content_type, object_pk, linker.link(content_type, object_pk), None, None)
    pk = python_pk(model, object_pk)
    instance = model._default_manager.filter(pk=pk).first() if pk is not None else None
    text = str(instance) if instance is not None else next((ref.object_repr for ref in refs if ref.object_repr), "")
    exists = None if pk is None else instance is not None  # "abc" of an integer pk never existed
    return HistoryTarget(content_type, object_pk, linker.link(content_type, object_pk, text), instance, exists)


#: What a history row shows: the ref's own columns, and its dispatch's.
HISTORY_FIELDS = [
    "dispatch_id",
    "content_type_id",
    "argument",
    "object_repr",
    "drift",
    "changed_fields",
    "likely_race",
    *(f"dispatch__{name}" for name in ("task_id", "task_name", "state", "enqueued_at", "lag", "worker")),
]


def history_page(content_type: ContentType, object_pk: str, per_page: int, number: str | None) -> Page[Any]:
    """One page of the object's refs with their dispatches, newest dispatch first (only the shown columns).

    Newest is the highest dispatch id: rows are written when the task is
    published, so ids follow enqueue order, and the ``(content_type,
    object_pk, -dispatch)`` index then serves the page directly: an object
    referenced by 100,000 dispatches pages as fast as one referenced by ten,
    where sorting by ``enqueued_at`` would join and sort them all. A pk no
    row of the model can have (``abc`` for an integer pk) has no history.
    """
    stored = stored_pk(content_type.model_class(), object_pk)
    if stored is None:
        return EstimatedCountPaginator(ObjectRef.objects.none(), per_page).get_page(number)
    refs = (
        ObjectRef.objects.filter(content_type__in=same_row_content_types(content_type), object_pk=stored)
        .select_related("dispatch")
        .only(*HISTORY_FIELDS)
        .order_by("-dispatch_id")
    )
    return EstimatedCountPaginator(refs, per_page).get_page(number)


@attrs.frozen
class HistoryRow:
    """One line of an object's history, its cells ready to print (pages show many)."""

    ref: ObjectRef
    dispatch: Dispatch
    url: str | None
    state: SafeString
    enqueued: str
    lag: str
    drift: SafeString
    #: The model the dispatch named the row by, when it is another of its inheritance chain ("" otherwise).
    recorded_as: str


def history_rows(linker: Linker, refs: Iterable[ObjectRef], target: ContentType) -> list[HistoryRow]:
    """The page's refs as rows, each linked to its dispatch's detail page."""
    return [
        HistoryRow(
            ref=ref,
            dispatch=ref.dispatch,
            url=linker.model_change_url(Dispatch, ref.dispatch_id),
            state=state_badge(ref.dispatch.state),
            enqueued=format_time(ref.dispatch.enqueued_at),
            lag=format_duration(ref.dispatch.lag),
            drift=drift_badge(ref.drift, likely_race=ref.likely_race, changed_fields=ref.changed_fields or ()),
            recorded_as=recorded_as(ref, target),
        )
        for ref in refs
    ]


def recorded_as(ref: ObjectRef, target: ContentType) -> str:
    """The model ``ref`` named its row by, when it is not the page's own ("Restaurant" on a Place's history)."""
    if ref.content_type_id == target.pk:
        return ""
    return model_label(ContentType.objects.get_for_id(ref.content_type_id))
