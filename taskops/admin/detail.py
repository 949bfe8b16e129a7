"""Context for the dispatch detail page and the per-object history.

The views themselves are ``DispatchAdmin`` methods (``taskops.admin``): they
check permissions and render; the functions here gather what they show.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Model
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django_celery_results.models import TaskResult

from taskops.admin.display import (
    ArgumentPrinter,
    Linker,
    ObjectLink,
    URLPatterns,
    drift_badge,
    format_duration,
    format_time,
    parse_json,
    pretty_json,
    state_badge,
)
from taskops.admin.paginator import EstimatedCountPaginator
from taskops.models import Dispatch, ObjectRef

#: Characters of a current or old field value shown on the detail page.
VALUE_CHARS = 160
#: Children and re-dispatches listed on the detail page.
RELATED_LIMIT = 50


@attrs.frozen
class FieldChange:
    """One changed field of a referenced row: what the dispatch saw, what is there now."""

    field: str
    #: The value at dispatch, when the snapshot kept values for this field.
    old: str | None
    #: The value now; None when the row is gone.
    current: str | None


@attrs.frozen
class RefRow:
    """A referenced object on the detail page."""

    ref: ObjectRef
    link: ObjectLink
    #: The row still exists (None: its model is no longer installed).
    exists: bool | None
    changes: list[FieldChange]


def fetch_current(refs: Iterable[ObjectRef]) -> dict[int, Model | None]:
    """The current row of every ref (by ref pk), one query per model class."""
    by_type: dict[ContentType, list[ObjectRef]] = defaultdict(list)
    for ref in refs:
        by_type[ref.content_type].append(ref)
    found: dict[int, Model | None] = {}
    for content_type, group in by_type.items():
        model = content_type.model_class()
        if model is None or model._meta.pk is None:
            continue
        pks = {}
        for ref in group:
            try:
                pks[ref.pk] = model._meta.pk.to_python(ref.object_pk)
            except ValidationError:
                pks[ref.pk] = None
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


def old_text(values: dict[str, Any], name: str) -> str | None:
    """The value a snapshot kept for a field, as short text; None when it kept only a digest."""
    if not isinstance(values, dict) or name not in values:
        return None
    return Truncator(str(values[name])).chars(VALUE_CHARS)


def ref_rows(refs: list[ObjectRef], linker: Linker) -> list[RefRow]:
    """Every ref with its link, whether the row still exists, and its changed fields old -> now."""
    current = fetch_current(refs)
    rows = []
    for ref in refs:
        instance = current.get(ref.pk)
        exists = None if ref.pk not in current else instance is not None
        changes = [
            FieldChange(
                field=name,
                old=old_text(ref.values, name),
                current=field_text(instance, name) if instance is not None else None,
            )
            for name in (ref.changed_fields or [])
        ]
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


def dispatch_url(admin_site_name: str, dispatch: Dispatch) -> str:
    return reverse(f"{admin_site_name}:taskops_dispatch_change", args=[quote(dispatch.pk)])


def result_url(admin_site_name: str, result: TaskResult) -> str | None:
    """The TaskResult's own admin page, when django-celery-results' admin is registered."""
    try:
        return reverse(f"{admin_site_name}:django_celery_results_taskresult_change", args=[quote(result.pk)])
    except NoReverseMatch:
        return None


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


def detail_context(admin_site_name: str, linker: Linker, dispatch: Dispatch) -> dict[str, Any]:
    """Everything the detail page shows beyond the ``Dispatch`` row itself."""
    refs = list(ObjectRef.objects.filter(dispatch=dispatch).select_related("content_type").order_by("pk"))
    printer = ArgumentPrinter(linker, refs)
    args, kwargs = parse_json(dispatch.args), parse_json(dispatch.kwargs)
    result = TaskResult.objects.filter(task_id=dispatch.task_id).first()
    return {
        "dispatch": dispatch,
        "args_html": printer.render(args) if not isinstance(args, str) else None,
        "kwargs_html": printer.render(kwargs) if not isinstance(kwargs, str) else None,
        "ref_rows": ref_rows(refs, linker),
        "timeline": timeline(dispatch),
        "lag_text": format_duration(dispatch.lag),
        "runtime_text": format_duration(dispatch.runtime),
        "task_result": result,
        "task_result_text": pretty_json(parse_json(result.result)) if result and result.result else "",
        "task_result_url": result_url(admin_site_name, result) if result else None,
        "related": related(dispatch),
    }


@attrs.frozen
class HistoryTarget:
    """The object a history page is about: its label, its current row, its links."""

    content_type: ContentType
    object_pk: str
    link: ObjectLink
    instance: Model | None


def history_target(linker: Linker, content_type: ContentType, object_pk: str, latest_repr: str) -> HistoryTarget:
    """The object now (or None if gone or not installed), linked to its admin page."""
    model = content_type.model_class()
    instance = None
    if model is not None and model._meta.pk is not None:
        try:
            instance = model._default_manager.filter(pk=model._meta.pk.to_python(object_pk)).first()
        except (ValidationError, ValueError):
            instance = None
    text = str(instance) if instance is not None else latest_repr
    return HistoryTarget(content_type, object_pk, linker.link(content_type, object_pk, text), instance)


#: What a history row shows: the ref's own columns, and its dispatch's.
HISTORY_FIELDS = [
    "dispatch_id",
    "argument",
    "object_repr",
    "drift",
    "changed_fields",
    "likely_race",
    *(f"dispatch__{name}" for name in ("task_id", "task_name", "state", "enqueued_at", "lag", "worker")),
]


def history_page(request: HttpRequest, content_type: ContentType, object_pk: str, per_page: int) -> Any:
    """One page of the object's refs with their dispatches, newest dispatch first (only the shown columns).

    Newest is the highest dispatch id: rows are written when the task is
    published, so ids follow enqueue order, and the ``(content_type,
    object_pk, -dispatch)`` index then serves the page directly: an object
    referenced by 100,000 dispatches pages as fast as one referenced by ten,
    where sorting by ``enqueued_at`` would join and sort them all.
    """
    refs = (
        ObjectRef.objects.filter(content_type=content_type, object_pk=object_pk)
        .select_related("dispatch")
        .only(*HISTORY_FIELDS)
        .order_by("-dispatch_id")
    )
    paginator = EstimatedCountPaginator(refs, per_page)
    return paginator.get_page(request.GET.get("p"))


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


def history_rows(admin_site_name: str, refs: Iterable[ObjectRef]) -> list[HistoryRow]:
    """The page's refs as rows; the dispatch links cost one ``reverse`` in all."""
    patterns = URLPatterns()
    return [
        HistoryRow(
            ref=ref,
            dispatch=ref.dispatch,
            url=patterns.url(f"{admin_site_name}:taskops_dispatch_change", ref.dispatch_id),
            state=state_badge(ref.dispatch.state),
            enqueued=format_time(ref.dispatch.enqueued_at),
            lag=format_duration(ref.dispatch.lag),
            drift=drift_badge(ref.drift, likely_race=ref.likely_race, changed_fields=ref.changed_fields or ()),
        )
        for ref in refs
    ]
