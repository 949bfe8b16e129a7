"""What the dispatch detail page shows beyond the row: refs now, timeline, workflow.

``DispatchAdmin.get_detail_context`` assembles the page from these parts.
What it shows of the referenced rows (their ``str()``, whether they still
exist, field values then and now) follows ``visibility.Visibility``.
Cost, whatever the arguments: one query for the refs, one per referenced
model class the user may view for the current rows, one for parent and root,
one each for the children and the re-dispatches (capped at
``RELATED_LIMIT``), and one for the TaskResult.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from taskops.admin.display import format_duration
from taskops.admin.links import Linker, ObjectLink
from taskops.admin.objects import python_pk
from taskops.admin.visibility import Visibility
from taskops.models import Dispatch, ObjectRef

#: Characters of a current or old field value shown on the detail page.
VALUE_CHARS = 160
#: Children and re-dispatches listed on the detail page.
RELATED_LIMIT = 50


@attrs.frozen
class FieldChange:
    """One changed field of a referenced row: what the dispatch saw, what is there now."""

    field: str
    #: The user may see this field's values (``Visibility.shown_fields``); if not, both are None.
    shown: bool
    #: The value at dispatch, when the snapshot kept values for this field.
    old: str | None
    #: The value now; None when the row is gone.
    current: str | None


@attrs.frozen
class RefRow:
    """A referenced object on the detail page."""

    ref: ObjectRef
    link: ObjectLink
    #: The row still exists (None: not shown to this user, or its model is no longer installed).
    exists: bool | None
    changes: list[FieldChange]


def fetch_current(refs: Iterable[ObjectRef], visibility: Visibility) -> dict[int, Model | None]:
    """The current row of every ref the user may view (by ref pk), one query per model class."""
    by_type: dict[ContentType, list[ObjectRef]] = defaultdict(list)
    for ref in refs:
        by_type[ref.content_type].append(ref)
    found: dict[int, Model | None] = {}
    for content_type, group in by_type.items():
        model = content_type.model_class()
        if model is None or not visibility.may_view(model):
            continue
        pks = {ref.pk: python_pk(model, ref.object_pk) for ref in group}
        rows = {
            obj.pk: obj for obj in model._default_manager.filter(pk__in=[pk for pk in pks.values() if pk is not None])
        }
        for ref_pk, pk in pks.items():
            found[ref_pk] = rows.get(pk)
    return found


def field_text(instance: Model, name: str) -> str:
    """A field's current value as short text (a foreign key shows its id)."""
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist:
        return "—"
    attname = getattr(field, "attname", name)
    return Truncator(str(getattr(instance, attname, ""))).chars(VALUE_CHARS)


def field_change(ref: ObjectRef, name: str, instance: Model | None, shown_fields: frozenset[str]) -> FieldChange:
    """One changed field, its values only when the user may see them."""
    if name not in shown_fields:
        return FieldChange(field=name, shown=False, old=None, current=None)
    current = field_text(instance, name) if instance is not None else None
    return FieldChange(field=name, shown=True, old=old_text(ref.values, name), current=current)


def old_text(values: dict[str, Any], name: str) -> str | None:
    """The value a snapshot kept for a field, as short text; None when it kept only a digest."""
    if not isinstance(values, dict) or name not in values:
        return None
    return Truncator(str(values[name])).chars(VALUE_CHARS)


def ref_rows(refs: list[ObjectRef], linker: Linker) -> list[RefRow]:
    """Every ref with its link, whether the row still exists, and its changed fields old -> now."""
    visibility = linker.visibility
    current = fetch_current(refs, visibility)
    rows = []
    for ref in refs:
        instance = current.get(ref.pk)
        exists = None if ref.pk not in current else instance is not None
        shown_fields = visibility.shown_fields(ref.content_type.model_class())
        changes = [field_change(ref, name, instance, shown_fields) for name in (ref.changed_fields or [])]
        rows.append(RefRow(ref=ref, link=linker.ref_link(ref), exists=exists, changes=changes))
    return rows


@attrs.frozen
class Moment:
    """One event of a dispatch's life, and how long after enqueue it came."""

    label: Any
    at: dt.datetime | None
    after_enqueue: str


def timeline(dispatch: Dispatch) -> list[Moment]:
    """Enqueued, ETA, expires, received, started, finished, in the order they happen."""
    events = [
        (_("Enqueued"), dispatch.enqueued_at, True),
        (_("ETA"), dispatch.eta, False),
        (_("Expires"), dispatch.expires, False),
        (_("Received by a worker"), dispatch.received_at, False),
        (_("Started"), dispatch.started_at, True),
        (_("Finished"), dispatch.finished_at, True),
    ]
    return [
        Moment(label, at, format_duration(at - dispatch.enqueued_at) if at is not None and index else "")
        for index, (label, at, always) in enumerate(events)
        if always or at is not None
    ]


@attrs.frozen
class Related:
    """Other dispatches of the same workflow, by task id (no foreign keys)."""

    parent: Dispatch | None
    root: Dispatch | None
    children: list[Dispatch]
    redispatches: list[Dispatch]


def related(dispatch: Dispatch) -> Related:
    """Parent and root (one query), children and re-dispatches (one each)."""
    ids = {task_id for task_id in (dispatch.parent_id, dispatch.root_id) if task_id and task_id != dispatch.task_id}
    found = {d.task_id: d for d in Dispatch.objects.filter(task_id__in=ids)} if ids else {}
    children = Dispatch.objects.filter(parent_id=dispatch.task_id).order_by("enqueued_at")[:RELATED_LIMIT]
    redispatches = dispatch.redispatches.order_by("enqueued_at")[:RELATED_LIMIT]
    return Related(
        parent=found.get(dispatch.parent_id),
        root=found.get(dispatch.root_id),
        children=list(children),
        redispatches=list(redispatches),
    )


def task_result(dispatch: Dispatch, visibility: Visibility) -> tuple[Any, bool]:
    """The dispatch's django-celery-results ``TaskResult`` (or None), and whether it is withheld.

    A result belongs to ``TaskResult``, a model of its own: users who may not
    view it learn nothing of it, not even whether there is one (no query).
    """
    if not apps.is_installed("django_celery_results"):
        return None, False
    if not visibility.may_view(apps.get_model("django_celery_results", "TaskResult")):
        return None, True
    return dispatch.task_result, False


def refs_of(dispatch: Dispatch) -> list[ObjectRef]:
    """The dispatch's refs in argument order, their content types joined (one query)."""
    return list(ObjectRef.objects.filter(dispatch=dispatch).select_related("content_type").order_by("pk"))
