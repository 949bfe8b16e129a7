"""Changelist filters and search for dispatches.

Every filter offers static choices (Celery's registry, the configured
queues, fixed bands): none of them scans the table for ``DISTINCT`` values,
which on a million rows would cost more than the page itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from taskops.models import Dispatch, Drift, ObjectRef

#: Task names that Celery registers for itself, never dispatched by an app.
CELERY_BUILTIN_PREFIX = "celery."


@functools.cache
def discover_tasks() -> None:
    """Import the apps' task modules once per process, as a worker does at start.

    A web process imports a tasks module only when something dispatches from
    it, so without this the registry would miss tasks nobody used yet.
    """
    current_app.loader.import_default_modules()


def registered_task_names() -> list[str]:
    """The task names the Celery app knows, without Celery's own: the choices, no query."""
    discover_tasks()
    return sorted(name for name in current_app.tasks if not name.startswith(CELERY_BUILTIN_PREFIX))


def configured_queue_names() -> list[str]:
    """Queues named by the Celery configuration: the default, ``task_queues``, ``task_routes``."""
    conf = current_app.conf
    names = {conf.task_default_queue}
    for queue in conf.task_queues or ():
        names.add(getattr(queue, "name", str(queue)))
    routes = conf.task_routes
    for route in routes.values() if isinstance(routes, dict) else ():
        if isinstance(route, dict) and route.get("queue"):
            names.add(str(route["queue"]))
    return sorted(name for name in names if name)


class StaticChoicesFilter(admin.SimpleListFilter):
    """A filter on one field whose choices come from code, not from the table."""

    field_name = ""

    def choices_values(self) -> Iterable[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = list(self.choices_values())
        current = self.value()
        if current and current not in values:  # a value from a link stays visible and selected
            values.append(current)
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


class TaskNameFilter(StaticChoicesFilter):
    """Task name, from the tasks Celery has registered."""

    title = _("task")
    parameter_name = "task"
    field_name = "task_name"

    def choices_values(self) -> Iterable[str]:
        return registered_task_names()


class QueueFilter(StaticChoicesFilter):
    """Queue, from the Celery configuration."""

    title = _("queue")
    parameter_name = "queue"
    field_name = "queue"

    def choices_values(self) -> Iterable[str]:
        return configured_queue_names()


class DriftFilter(admin.SimpleListFilter):
    """The dispatch's worst drift (denormalized on ``Dispatch``), and the race."""

    title = _("drift")
    parameter_name = "drift"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("changed", _("Any changed")),
            ("missing", _("Any missing")),
            ("race", _("Likely race")),
            ("unchanged", _("Unchanged")),
            ("pending", _("Not checked yet")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "race":
            return queryset.filter(likely_race=True)
        if value in Drift.values:
            return queryset.filter(drift=value)
        return queryset


#: Lag bands: (parameter value, label, lower bound, upper bound).
LAG_BANDS: list[tuple[str, Any, dt.timedelta | None, dt.timedelta | None]] = [
    ("lt1s", _("under 1 s"), None, dt.timedelta(seconds=1)),
    ("1-10s", _("1\u201310 s"), dt.timedelta(seconds=1), dt.timedelta(seconds=10)),
    ("10s-1m", _("10 s\u20131 min"), dt.timedelta(seconds=10), dt.timedelta(minutes=1)),
    ("1-10m", _("1\u201310 min"), dt.timedelta(minutes=1), dt.timedelta(minutes=10)),
    ("gt10m", _("over 10 min"), dt.timedelta(minutes=10), None),
]


class LagBandFilter(admin.SimpleListFilter):
    """Lag in bands an operator reasons in; "not started" has no lag yet."""

    title = _("lag")
    parameter_name = "lag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(key, label) for key, label, _low, _high in LAG_BANDS] + [("none", _("not started"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(lag__isnull=True)
        for key, _label, low, high in LAG_BANDS:
            if value == key:
                if low is not None:
                    queryset = queryset.filter(lag__gte=low)
                if high is not None:
                    queryset = queryset.filter(lag__lt=high)
        return queryset


# --- search --------------------------------------------------------------------

#: ``app_label.model:pk``, e.g. ``demo.question:42``.
OBJECT_TERM = re.compile(r"^(?P<app>\w+)\.(?P<model>\w+):(?P<pk>\S+)$")


def search_dispatches(queryset: QuerySet[Dispatch], term: str, models: Iterable[type[Any]] = ()) -> QuerySet[Dispatch]:
    """Dispatches matching a search term, each clause on an index.

    ``demo.question:42`` finds dispatches that referenced that object; any
    other single word matches a task id exactly, a task name (registered
    names containing it, or the exact name), or an object pk of one of
    ``models`` (the models the admin site shows).
    """
    term = term.strip()
    if not term:
        return queryset
    match = OBJECT_TERM.match(term)
    if match:
        try:
            content_type = ContentType.objects.get_by_natural_key(match["app"].lower(), match["model"].lower())
        except ContentType.DoesNotExist:
            return queryset.none()
        refs = ObjectRef.objects.filter(content_type=content_type, object_pk=match["pk"])
        return queryset.filter(pk__in=refs.values("dispatch_id"))
    lowered = term.lower()
    task_names = [name for name in registered_task_names() if lowered in name.lower()]
    condition = Q(task_id=term) | Q(task_name=term) | Q(task_name__in=task_names)
    if not any(char.isspace() for char in term):
        content_types = ContentType.objects.get_for_models(*models).values() if models else []
        refs = ObjectRef.objects.filter(content_type__in=[ct.pk for ct in content_types], object_pk=term)
        condition |= Q(pk__in=refs.values("dispatch_id"))
    return queryset.filter(condition)
