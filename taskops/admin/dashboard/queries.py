"""The numbers behind the dashboard, computed with a handful of bounded queries.

Window figures (dispatched, lag, drift, failures, charts) read only the rows
enqueued in the window, through the ``enqueued_at`` index. "Now" figures
(running, backlog, oldest pending) read only unfinished rows, through the
``state`` index. Percentiles are PostgreSQL's ``percentile_cont``; elsewhere
they are computed the same way (linear interpolation) from an ordered query
that fetches two rows.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from django.db import connections
from django.db.models import Avg, Count, DurationField, Max, Min, Q, QuerySet
from django.db.models.aggregates import Aggregate
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from taskops.admin.display import refs_prefetch
from taskops.models import Dispatch, Drift, State

#: States of work waiting to run: the backlog.
WAITING_STATES = [State.PENDING, State.RECEIVED, State.RETRY]
#: States of unfinished work.
ACTIVE_STATES = [*WAITING_STATES, State.STARTED]
#: Dispatches shown under "recent stale".
RECENT_STALE_LIMIT = 10
#: Oldest pending dispatches judged for "would run on stale data".
PENDING_JUDGE_LIMIT = 500
#: Verdicts shown in that panel.
PENDING_SHOWN_LIMIT = 20


@attrs.frozen
class Window:
    """A time window the dashboard can show, and the bucket its charts use."""

    key: str
    label: Any
    span: dt.timedelta
    bucket: dt.timedelta
    trunc: Callable[[str], Any]


WINDOWS: dict[str, Window] = {
    window.key: window
    for window in (
        Window("15m", _("15 min"), dt.timedelta(minutes=15), dt.timedelta(minutes=1), TruncMinute),
        Window("1h", _("1 h"), dt.timedelta(hours=1), dt.timedelta(minutes=1), TruncMinute),
        Window("24h", _("24 h"), dt.timedelta(hours=24), dt.timedelta(hours=1), TruncHour),
    )
}
DEFAULT_WINDOW = "1h"


def get_window(key: str | None) -> Window:
    """The window for a query-string value; unknown values get the default."""
    return WINDOWS.get(key or "", WINDOWS[DEFAULT_WINDOW])


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within [0, 1]")
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra)


@attrs.frozen
class LagStats:
    """Lag percentiles of a set of started dispatches (None when none started)."""

    p50: dt.timedelta | None = None
    p95: dt.timedelta | None = None
    max: dt.timedelta | None = None


def uses_percentile_cont(queryset: QuerySet[Any]) -> bool:
    return connections[queryset.db].vendor == "postgresql"


def interpolated_percentile(queryset: QuerySet[Dispatch], count: int, fraction: float) -> dt.timedelta | None:
    """``percentile_cont`` by hand: the two neighbouring lags of an ordered query, interpolated."""
    if count == 0:
        return None
    position = fraction * (count - 1)
    low = math.floor(position)
    values = list(queryset.order_by("lag").values_list("lag", flat=True)[low : low + 2])
    if not values or values[0] is None:
        return None
    if len(values) == 1 or values[1] is None or position == low:
        return values[0]
    return values[0] + (values[1] - values[0]) * (position - low)


def lag_stats(queryset: QuerySet[Dispatch]) -> LagStats:
    """p50, p95 and max of ``lag`` over the queryset's started dispatches."""
    started = queryset.filter(lag__isnull=False)
    if uses_percentile_cont(started):
        row = started.aggregate(p50=PercentileCont("lag", 0.5), p95=PercentileCont("lag", 0.95), max=Max("lag"))
        return LagStats(row["p50"], row["p95"], row["max"])
    row = started.aggregate(count=Count("id"), max=Max("lag"))
    return LagStats(
        interpolated_percentile(started, row["count"], 0.5),
        interpolated_percentile(started, row["count"], 0.95),
        row["max"],
    )


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` as a percentage, None when there is nothing to divide."""
    return 100.0 * part / whole if whole else None


@attrs.frozen
class Figures:
    """One line of numbers: the whole window, or one task in it."""

    dispatched: int = 0
    running: int = 0
    pending: int = 0
    failures: int = 0
    checked: int = 0
    changed: int = 0
    missing: int = 0
    lag: LagStats = LagStats()

    @property
    def changed_rate(self) -> float | None:
        return rate(self.changed, self.checked)

    @property
    def missing_rate(self) -> float | None:
        return rate(self.missing, self.checked)


@attrs.frozen
class TaskRow:
    task_name: str
    figures: Figures


#: Aggregates of the window query, shared by the totals and the per-task table.
def window_aggregates() -> dict[str, Any]:
    return {
        "dispatched": Count("id"),
        "failures": Count("id", filter=Q(state=State.FAILURE)),
        "checked": Count("id", filter=~Q(drift=Drift.PENDING)),
        "changed": Count("id", filter=Q(drift=Drift.CHANGED)),
        "missing": Count("id", filter=Q(drift=Drift.MISSING)),
    }


def now_aggregates() -> dict[str, Any]:
    return {
        "running": Count("id", filter=Q(state=State.STARTED)),
        "pending": Count("id", filter=Q(state__in=WAITING_STATES)),
        "oldest": Min("enqueued_at", filter=Q(state__in=WAITING_STATES)),
    }


@attrs.frozen
class Bar:
    """One bucket of a chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    title: str


@attrs.frozen
class Chart:
    """A small bar chart with an optional line, ready for an inline ``<svg>``."""

    width: int
    height: int
    bars: list[Bar]
    #: ``points`` of a ``<polyline>`` (may be empty).
    line: str
    peak_label: str
    start_label: str
    end_label: str


CHART_WIDTH = 600
CHART_HEIGHT = 110


def bucket_starts(window: Window, now: dt.datetime) -> list[dt.datetime]:
    """The start of every bucket from the window's start to now, in the current time zone."""
    start = timezone.localtime(now - window.span).replace(second=0, microsecond=0)
    if window.bucket >= dt.timedelta(hours=1):
        start = start.replace(minute=0)
    starts = []
    while start <= now:
        starts.append(start)
        start += window.bucket
    return starts


def make_chart(
    starts: list[dt.datetime],
    values: list[float],
    title: Callable[[float], str],
    line: list[float | None] | None = None,
) -> Chart:
    """Bars for ``values`` (and a line for ``line``) scaled to the larger peak."""
    peak = max([*values, *(value for value in line or [] if value is not None), 0.0])
    scale = (CHART_HEIGHT - 4) / peak if peak else 0.0
    step = CHART_WIDTH / max(len(starts), 1)
    bars = []
    for index, (start, value) in enumerate(zip(starts, values, strict=True)):
        height = value * scale
        label = f"{timezone.localtime(start):%H:%M}: {title(value)}"
        bars.append(Bar(index * step + 1, CHART_HEIGHT - height, max(step - 2, 1), height, label))
    points = " ".join(
        f"{index * step + step / 2:.1f},{CHART_HEIGHT - value * scale:.1f}"
        for index, value in enumerate(line or [])
        if value is not None
    )
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        bars=bars,
        line=points,
        peak_label=title(peak),
        start_label=f"{timezone.localtime(starts[0]):%H:%M}" if starts else "",
        end_label=f"{timezone.localtime(starts[-1]):%H:%M}" if starts else "",
    )


def seconds(value: dt.timedelta | float | None) -> float | None:
    """A lag as seconds (SQLite may hand back an average as microseconds)."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000


def format_seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2f} s"


def charts(window_qs: QuerySet[Dispatch], window: Window, now: dt.datetime) -> tuple[Chart, Chart]:
    """Throughput (dispatches per bucket) and lag (max as bars, average as a line), one query."""
    starts = bucket_starts(window, now)
    rows = (
        window_qs.annotate(bucket=window.trunc("enqueued_at"))
        .values("bucket")
        .annotate(count=Count("id"), lag_avg=Avg("lag"), lag_max=Max("lag"))
        .order_by("bucket")
    )
    by_start = {row["bucket"].timestamp(): dict(row) for row in rows if row["bucket"] is not None}
    found: list[dict[str, Any]] = [by_start.get(start.timestamp(), {}) for start in starts]
    unit = _("per min") if window.bucket < dt.timedelta(hours=1) else _("per h")
    throughput = make_chart(starts, [float(row.get("count", 0)) for row in found], lambda v: f"{v:.0f} {unit}")
    lag_max = [seconds(row.get("lag_max")) or 0.0 for row in found]
    lag_avg = [seconds(row.get("lag_avg")) for row in found]
    return throughput, make_chart(starts, lag_max, format_seconds, line=lag_avg)


@attrs.frozen
class PendingPanel:
    """ "Pending work that would run on stale data", when the judge is available."""

    available: bool
    verdicts: list[Any] = attrs.Factory(list)
    judged: int = 0


def load_judge() -> Callable[[QuerySet[Dispatch]], list[Any]] | None:
    """``taskops.staleness.judge_pending``, or None where that module is not installed."""
    try:
        module = importlib.import_module("taskops.staleness")
    except ImportError:
        return None
    judge: Callable[[QuerySet[Dispatch]], list[Any]] | None = getattr(module, "judge_pending", None)
    return judge


def pending_stale() -> PendingPanel:
    """The oldest pending dispatches, judged; only the stale verdicts are shown."""
    judge = load_judge()
    if judge is None:
        return PendingPanel(available=False)
    oldest = Dispatch.objects.filter(state__in=WAITING_STATES).order_by("enqueued_at")
    pks = list(oldest.values_list("pk", flat=True)[:PENDING_JUDGE_LIMIT])
    verdicts = judge(Dispatch.objects.filter(pk__in=pks).order_by("enqueued_at"))
    stale = [verdict for verdict in verdicts if verdict.drift in (Drift.CHANGED, Drift.MISSING)]
    return PendingPanel(available=True, verdicts=stale[:PENDING_SHOWN_LIMIT], judged=len(pks))


@attrs.frozen
class Dashboard:
    window: Window
    now: dt.datetime
    totals: Figures
    oldest_pending_age: dt.timedelta | None
    tasks: list[TaskRow]
    throughput: Chart
    lag_chart: Chart
    recent_stale: list[Dispatch]
    pending: PendingPanel


def per_task(window_qs: QuerySet[Dispatch]) -> list[TaskRow]:
    """Window figures and "now" counts per task name, percentiles included."""
    grouped = window_qs.values("task_name").order_by("task_name")
    by_task: dict[str, dict[str, Any]] = {}
    aggregates = window_aggregates()
    if uses_percentile_cont(window_qs):
        aggregates |= {
            "p50": PercentileCont("lag", 0.5, filter=Q(lag__isnull=False)),
            "p95": PercentileCont("lag", 0.95, filter=Q(lag__isnull=False)),
        }
    for grouped_row in grouped.annotate(**aggregates, lag_count=Count("lag"), lag_max=Max("lag")):
        by_task[grouped_row["task_name"]] = dict(grouped_row)
    active = Dispatch.objects.filter(state__in=ACTIVE_STATES).values("task_name").order_by("task_name")
    now_rows: dict[str, dict[str, Any]] = {
        now_row["task_name"]: dict(now_row) for now_row in active.annotate(**now_aggregates())
    }
    rows = []
    for name in sorted(set(by_task) | set(now_rows)):
        row: dict[str, Any] = by_task.get(name, {})
        if row and "p50" in row:
            lag = LagStats(row["p50"], row["p95"], row["lag_max"])
        elif row:
            started = window_qs.filter(task_name=name, lag__isnull=False)
            lag = LagStats(
                interpolated_percentile(started, row["lag_count"], 0.5),
                interpolated_percentile(started, row["lag_count"], 0.95),
                row["lag_max"],
            )
        else:
            lag = LagStats()
        current = now_rows.get(name, {})
        figures = Figures(
            dispatched=row.get("dispatched", 0),
            running=current.get("running", 0),
            pending=current.get("pending", 0),
            failures=row.get("failures", 0),
            checked=row.get("checked", 0),
            changed=row.get("changed", 0),
            missing=row.get("missing", 0),
            lag=lag,
        )
        rows.append(TaskRow(name, figures))
    return rows


#: Sortable columns of the per-task table: query-string key -> sort key.
SORT_KEYS: Mapping[str, Callable[[TaskRow], Any]] = {
    "task": lambda row: row.task_name,
    "dispatched": lambda row: row.figures.dispatched,
    "running": lambda row: row.figures.running,
    "pending": lambda row: row.figures.pending,
    "failures": lambda row: row.figures.failures,
    "changed": lambda row: row.figures.changed_rate or -1.0,
    "missing": lambda row: row.figures.missing_rate or -1.0,
    "p50": lambda row: seconds(row.figures.lag.p50) or -1.0,
    "p95": lambda row: seconds(row.figures.lag.p95) or -1.0,
    "max": lambda row: seconds(row.figures.lag.max) or -1.0,
}
#: Column headers of the per-task table, in order.
COLUMN_LABELS: Mapping[str, Any] = {
    "task": _("task"),
    "dispatched": _("dispatched"),
    "running": _("running"),
    "pending": _("pending"),
    "p50": _("lag p50"),
    "p95": _("lag p95"),
    "max": _("lag max"),
    "changed": _("changed"),
    "missing": _("missing"),
    "failures": _("failures"),
}
DEFAULT_SORT = "-dispatched"


def sort_rows(rows: Iterable[TaskRow], sort: str | None) -> tuple[list[TaskRow], str]:
    """Rows sorted by a ``SORT_KEYS`` column, ``-`` for descending; returns the sort used."""
    sort = sort if sort and sort.lstrip("-") in SORT_KEYS else DEFAULT_SORT
    key = SORT_KEYS[sort.lstrip("-")]
    ordered = sorted(rows, key=lambda row: row.task_name)
    return sorted(ordered, key=key, reverse=sort.startswith("-")), sort


def collect(window: Window, *, now: dt.datetime | None = None, sort: str | None = None) -> tuple[Dashboard, str]:
    """Everything the dashboard shows for ``window``; returns it and the sort used."""
    now = now or timezone.now()
    window_qs = Dispatch.objects.filter(enqueued_at__gte=now - window.span)
    totals: dict[str, Any] = window_qs.aggregate(**window_aggregates())
    current: dict[str, Any] = Dispatch.objects.filter(state__in=ACTIVE_STATES).aggregate(**now_aggregates())
    tasks, used_sort = sort_rows(per_task(window_qs), sort)
    throughput, lag_chart = charts(window_qs, window, now)
    stale = (
        window_qs.filter(drift__in=[Drift.CHANGED, Drift.MISSING])
        .prefetch_related(refs_prefetch())
        .order_by("-enqueued_at")[:RECENT_STALE_LIMIT]
    )
    dashboard = Dashboard(
        window=window,
        now=now,
        totals=Figures(
            dispatched=totals["dispatched"],
            running=current["running"],
            pending=current["pending"],
            failures=totals["failures"],
            checked=totals["checked"],
            changed=totals["changed"],
            missing=totals["missing"],
            lag=lag_stats(window_qs),
        ),
        oldest_pending_age=now - current["oldest"] if current["oldest"] else None,
        tasks=tasks,
        throughput=throughput,
        lag_chart=lag_chart,
        recent_stale=list(stale),
        pending=pending_stale(),
    )
    return dashboard, used_sort
