"""Percentiles of durations over a queryset, the same on every database.

PostgreSQL computes ``percentile_cont`` itself; elsewhere the same
interpolation is done by hand from an ordered query that fetches two rows.
Used by the dashboard and the alert rules.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db import connections
from django.db.models import Aggregate, Count, DurationField, QuerySet


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within [0, 1]")
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra)


def has_percentile_cont(queryset: QuerySet[Any]) -> bool:
    return connections[queryset.db].vendor == "postgresql"


def interpolated_percentile(queryset: QuerySet[Any], field: str, count: int, fraction: float) -> dt.timedelta | None:
    """``percentile_cont`` by hand: the two neighbouring values of an ordered query, interpolated."""
    if count == 0:
        return None
    position = fraction * (count - 1)
    low = math.floor(position)
    values = list(queryset.order_by(field).values_list(field, flat=True)[low : low + 2])
    if not values or values[0] is None:
        return None
    if len(values) == 1 or values[1] is None or position == low:
        return values[0]  # type: ignore[no-any-return]
    return values[0] + (values[1] - values[0]) * (position - low)  # type: ignore[no-any-return]


def percentiles_by(
    queryset: QuerySet[Any], group: str, field: str, fraction: float, min_count: int = 1
) -> dict[Any, dt.timedelta | None]:
    """Per value of ``group`` with at least ``min_count`` rows where ``field`` is set: the ``fraction``
    percentile of ``field``. PostgreSQL: one grouped query; elsewhere one, then one or two per group."""
    rows = queryset.filter(**{f"{field}__isnull": False})
    grouped = rows.values(group).order_by(group)
    if has_percentile_cont(rows):
        found = grouped.annotate(n=Count("pk"), p=PercentileCont(field, fraction))
        return {row[group]: row["p"] for row in found if row["n"] >= min_count}
    counts = {row[group]: row["n"] for row in grouped.annotate(n=Count("pk")) if row["n"] >= min_count}
    return {
        value: interpolated_percentile(rows.filter(**{group: value}), field, count, fraction)
        for value, count in counts.items()
    }
