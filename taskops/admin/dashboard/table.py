"""The dashboard's controls: the window chooser and the sortable per-task table.

Links and orderings only, from the query string: no query. Sorting happens
in Python over the per-task rows (one per task name, a few dozen at most).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from django.utils.translation import gettext_lazy as _

from taskops.admin.dashboard.queries import DEFAULT_WINDOW, WINDOWS, TaskRow, seconds

#: Sortable columns of the per-task table: query-string key -> sort key.
SORT_KEYS: Mapping[str, Callable[[TaskRow], Any]] = {
    "task": lambda row: row.task_name,
    "dispatched": lambda row: row.figures.dispatched,
    "running": lambda row: row.figures.running,
    "pending": lambda row: row.figures.pending,
    "scheduled": lambda row: row.figures.scheduled,
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
    "scheduled": _("scheduled"),
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


def window_links(params: Mapping[str, str], current: str) -> list[dict[str, Any]]:
    """The window chooser: one link per window, keeping the sort."""
    links = []
    for key, window in WINDOWS.items():
        query = {"window": key, **({"sort": params["sort"]} if params.get("sort") else {})}
        links.append({"label": window.label, "url": "?" + urlencode(query), "current": key == current})
    return links


def sort_columns(params: Mapping[str, str], sort: str) -> list[dict[str, Any]]:
    """Headers of the per-task table: label, the link that sorts by it, the current direction."""
    window = params.get("window", DEFAULT_WINDOW)
    columns = []
    for key, label in COLUMN_LABELS.items():
        direction = "desc" if sort == f"-{key}" else "asc" if sort == key else ""
        next_sort = key if direction == "desc" else f"-{key}"
        url = "?" + urlencode({"window": window, "sort": next_sort})
        columns.append({"key": key, "label": label, "url": url, "direction": direction})
    return columns
