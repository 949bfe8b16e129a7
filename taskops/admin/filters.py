"""The changelist's filters: task, queue, drift (and the race), lag band.

Every filter offers static choices (Celery's registry, the configured
queues, fixed bands): none of them scans the table for ``DISTINCT`` values,
which on a million rows would cost more than the page itself. Each filters
on an indexed column of ``Dispatch``. A value no row can match (an unknown
drift or lag band) finds nothing, as an unknown task name does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from taskops.admin.celery_names import configured_queue_names, registered_task_names
from taskops.models import FINISHED_STATES, Drift

#: The drift filter's value for a likely race: a missing row whose dispatch had the in-transaction hazard.
LIKELY_RACE = "race"
#: The lag filter's value for dispatches that have not started (no lag yet).
NOT_STARTED = "none"


class StaticChoicesFilter(admin.SimpleListFilter):
    """A filter on one field whose choices come from code, not from the table."""

    #: The ``Dispatch`` field filtered on.
    field_name = ""
    #: Where the choices come from: a function of no arguments, cheap (each changelist page calls it).
    choices_from: Callable[[], Iterable[str]]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = list(self.choices_from())
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
    choices_from = staticmethod(registered_task_names)


class QueueFilter(StaticChoicesFilter):
    """Queue, from the Celery configuration."""

    title = _("queue")
    parameter_name = "queue"
    field_name = "queue"
    choices_from = staticmethod(configured_queue_names)


class DriftFilter(admin.SimpleListFilter):
    """The dispatch's worst drift (denormalized on ``Dispatch``), and the race.

    A dispatch whose arguments referenced no object has nothing to judge: it
    is neither "unchanged" (the recorder's word for it) nor "not checked
    yet". "Not checked yet" is work that will be judged: unfinished, with
    objects. Each choice starts from the ``(drift, -enqueued_at)`` index; the
    other conditions are read from its rows.
    """

    title = _("drift")
    parameter_name = "drift"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            (Drift.CHANGED, _("Any changed")),
            (Drift.MISSING, _("Any missing")),
            (LIKELY_RACE, _("Likely race")),
            (Drift.UNCHANGED, _("Unchanged")),
            (Drift.PENDING, _("Not checked yet")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value == LIKELY_RACE:
            return queryset.filter(likely_race=True)
        if value == Drift.PENDING:
            return queryset.filter(drift=value, ref_count__gt=0).exclude(state__in=FINISHED_STATES)
        if value in Drift.values:
            return queryset.filter(drift=value, ref_count__gt=0)
        return queryset.none()


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
        return [(key, label) for key, label, _low, _high in LAG_BANDS] + [(NOT_STARTED, _("not started"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value == NOT_STARTED:
            return queryset.filter(lag__isnull=True)
        for key, _label, low, high in LAG_BANDS:
            if value == key:
                if low is not None:
                    queryset = queryset.filter(lag__gte=low)
                if high is not None:
                    queryset = queryset.filter(lag__lt=high)
                return queryset
        return queryset.none()
