"""The dashboard's small charts: bars and a line, in SVG user units.

Pure geometry over values the queries already fetched: no query, no
template. ``make_chart`` scales bars (and an optional line) to the larger
peak and labels each bucket with its start time in the current time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs
from django.utils import timezone
from django.utils.translation import gettext as _


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


def bucket_starts(span: dt.timedelta, bucket: dt.timedelta, now: dt.datetime) -> list[dt.datetime]:
    """The start of every bucket from ``now - span`` to now, in the current time zone."""
    start = timezone.localtime(now - span).replace(second=0, microsecond=0)
    if bucket >= dt.timedelta(hours=1):
        start = start.replace(minute=0)
    starts = []
    while start <= now:
        starts.append(start)
        start += bucket
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


def format_seconds(value: float) -> str:
    """A lag in seconds for a chart's labels: "0.42 s", "12 s"."""
    return f"{value:.0f} s" if value >= 10 else f"{value:.2f} s"


def throughput_chart(starts: list[dt.datetime], counts: list[float], bucket: dt.timedelta) -> Chart:
    """Dispatches per bucket, as bars."""
    unit = _("per min") if bucket < dt.timedelta(hours=1) else _("per h")
    return make_chart(starts, counts, lambda value: f"{value:.0f} {unit}")


def lag_chart(starts: list[dt.datetime], maxima: list[float], averages: list[float | None]) -> Chart:
    """Lag per bucket: the maximum as bars, the average as a line (where something ran)."""
    return make_chart(starts, maxima, format_seconds, line=averages)
