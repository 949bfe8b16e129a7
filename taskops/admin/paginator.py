"""A paginator that never counts a whole big table.

``COUNT(*)`` over a million-row table costs a full scan on every page view.
The changelist only needs to know how many pages to offer, so:

- unfiltered, on PostgreSQL: the planner's row estimate (``pg_class.reltuples``),
  kept fresh by autovacuum, costs one catalog lookup;
- otherwise: an exact count, but over a subquery capped at ``count_limit``
  rows, so it reads at most that many index entries. Past the cap the count
  is reported as an estimate ("more than 10,000").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

if TYPE_CHECKING:
    BasePaginator = Paginator[Any]
else:
    BasePaginator = Paginator


class EstimatedCountPaginator(BasePaginator):
    """A ``Paginator`` over a queryset whose ``count`` is capped or estimated."""

    #: Count exactly up to this many rows; past it, estimate.
    count_limit = 10_000

    def __init__(self, object_list: Any, per_page: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, *args, **kwargs)
        #: ``count`` is the table's estimate, not an exact count (read after ``count``).
        self.estimated = False
        #: ``count`` stopped at ``count_limit``: there are more rows (read after ``count``).
        self.capped = False

    @cached_property
    def count(self) -> int:
        """Exact up to ``count_limit``; beyond, the table estimate or the cap."""
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if is_unfiltered(queryset):
            estimate = table_row_estimate(queryset)
            if estimate is not None and estimate > self.count_limit:
                self.estimated = True
                return estimate
        counted = capped_count(queryset, self.count_limit + 1)
        self.capped = counted > self.count_limit
        return counted


def is_unfiltered(queryset: QuerySet[Any]) -> bool:
    """The query reads the whole table: no WHERE, no slice, no join."""
    query = queryset.query
    return not query.where.children and query.low_mark == 0 and query.high_mark is None and not query.distinct


def capped_count(queryset: QuerySet[Any], limit: int) -> int:
    """``COUNT(*)`` over at most ``limit`` rows: ``SELECT COUNT(*) FROM (... LIMIT n)``."""
    return queryset.order_by().values("pk")[:limit].count()


def table_row_estimate(queryset: QuerySet[Any]) -> int | None:
    """PostgreSQL's estimate of the rows in the queryset's table; None elsewhere or if unknown."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    # reltuples is -1 for a table never vacuumed or analyzed (PostgreSQL 14+).
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])
