"""Metrics for Prometheus, computed from the database with bounded queries and cached briefly.

Every process and every scraper reads the same figures: they come from the
rows (the window's dispatches through the ``enqueued_at`` index, waiting work
through the ``state`` index), not from counters in one process's memory, and
one computation is shared for ``TASKOPS["METRICS_CACHE_SECONDS"]`` through the
Django cache ``TASKOPS["METRICS_CACHE"]`` names. That cache must be one every
web process reaches (database, Redis, Memcached): with a process-local one
(``LocMemCache``, Django's default) each process computes and keeps figures of
its own (system check ``taskops.W050``). Families:

- ``taskops_dispatches{task,state}``: dispatches enqueued in the window (``TASKOPS["METRICS_WINDOW"]``);
- ``taskops_lag_seconds{task}``: histogram of their lag;
- ``taskops_drift{task,drift}``: their drift, by kind (dispatches with objects only);
- ``taskops_backlog_oldest_seconds{queue}``: how long the oldest due task of each queue has waited;
- ``taskops_alerts_open{rule}``: open (or acknowledged) alerts per rule.

And three of the serving process itself, never cached (each process has its
own writer; a worker's are in its log):

- ``taskops_recording_dropped_total``: records dropped because the writer's queue was full;
- ``taskops_recording_errors_total``: recorder errors logged;
- ``taskops_recording_backlog``: records handed to the writer and not yet written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.core.cache import BaseCache, caches
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from taskops import recording
from taskops.alerts.conditions import WAITING
from taskops.conf import taskops_settings
from taskops.models import Alert, Dispatch, Drift

#: Lag histogram buckets, in seconds.
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
CACHE_KEY = "taskops:metrics"


def metrics_cache() -> BaseCache:
    """The cache that shares a scrape's figures (``TASKOPS["METRICS_CACHE"]``)."""
    return caches[taskops_settings.METRICS_CACHE]


def exposition() -> bytes:
    """The text exposition of every family, the database's from the cache when it is fresh."""
    cache = metrics_cache()
    text = cache.get(CACHE_KEY)
    if not isinstance(text, bytes):
        registry = CollectorRegistry()
        registry.register(DatabaseCollector())
        text = generate_latest(registry)
        cache.set(CACHE_KEY, text, timeout=int(taskops_settings.METRICS_CACHE_SECONDS))
    local = CollectorRegistry()
    local.register(ProcessCollector())
    return text + generate_latest(local)


class ProcessCollector(Collector):
    """The recorder's counters of this process (what a database outage costs it)."""

    def collect(self) -> Iterator[Metric]:
        dropped = recording.dropped_count()
        yield CounterMetricFamily("taskops_recording_dropped", "Records dropped: the writer queue was full", dropped)
        errors = recording.error_count()
        yield CounterMetricFamily("taskops_recording_errors", "Recorder errors logged", errors)
        backlog = recording.backlog()
        yield GaugeMetricFamily("taskops_recording_backlog", "Records handed to the writer, not yet written", backlog)


class DatabaseCollector(Collector):
    """Reads the figures from the database when collected."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        window = Dispatch.objects.filter(enqueued_at__gte=now - dt.timedelta(seconds=taskops_settings.METRICS_WINDOW))
        yield dispatches(window)
        yield lag(window)
        yield drift(window)
        yield backlog(now)
        yield alerts()


def dispatches(window: Any) -> Metric:
    family = GaugeMetricFamily(
        "taskops_dispatches", "Dispatches enqueued in the window, by state", labels=["task", "state"]
    )
    for row in window.values("task_name", "state").order_by().annotate(n=Count("pk")):
        family.add_metric([row["task_name"], row["state"]], row["n"])
    return family


def lag(window: Any) -> Metric:
    family = HistogramMetricFamily("taskops_lag_seconds", "Lag of the window's started dispatches", labels=["task"])
    buckets = {f"le{i}": Count("pk", filter=Q(lag__lte=dt.timedelta(seconds=b))) for i, b in enumerate(LAG_BUCKETS)}
    started = window.filter(lag__isnull=False).values("task_name").order_by()
    for row in started.annotate(n=Count("pk"), total=Sum("lag"), **buckets):
        counts = [(str(bound), row[f"le{i}"]) for i, bound in enumerate(LAG_BUCKETS)] + [("+Inf", row["n"])]
        family.add_metric([row["task_name"]], counts, seconds(row["total"]))
    return family


def seconds(value: dt.timedelta | float | None) -> float:
    """A sum of durations in seconds (SQLite may hand one back as microseconds)."""
    if value is None:
        return 0.0
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value) / 1_000_000


def drift(window: Any) -> Metric:
    family = GaugeMetricFamily(
        "taskops_drift", "The window's dispatches with objects, by drift", labels=["task", "drift"]
    )
    judged = window.filter(ref_count__gt=0).values("task_name", "drift").order_by().annotate(n=Count("pk"))
    for row in judged:
        family.add_metric([row["task_name"], Drift(row["drift"]).value], row["n"])
    return family


def backlog(now: dt.datetime) -> Metric:
    family = GaugeMetricFamily(
        "taskops_backlog_oldest_seconds", "How long the oldest due task of each queue has waited", labels=["queue"]
    )
    due = Dispatch.objects.filter(Q(eta__isnull=True) | Q(eta__lte=now), state__in=WAITING)
    for row in due.values("queue").order_by().annotate(oldest=Min("enqueued_at")):
        family.add_metric([row["queue"]], (now - row["oldest"]).total_seconds())
    return family


def alerts() -> Metric:
    family = GaugeMetricFamily("taskops_alerts_open", "Open or acknowledged alerts per rule", labels=["rule"])
    open_alerts = Alert.objects.exclude(status=Alert.Status.RESOLVED).values("rule__name").order_by()
    for row in open_alerts.annotate(n=Count("pk")):
        family.add_metric([row["rule__name"]], row["n"])
    return family
