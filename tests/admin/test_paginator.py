"""Counting without counting the whole table: capped counts, PostgreSQL's estimate."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from taskops.admin import DispatchAdmin
from taskops.admin.paginator import EstimatedCountPaginator, table_row_estimate
from taskops.models import Dispatch
from tests.admin.helpers import CHANGELIST, make_rows

pytestmark = pytest.mark.django_db


def test_changelist_never_counts_the_whole_table(admin_client: Client) -> None:
    make_rows(3, 1)
    unfiltered_count = re.compile(r'SELECT COUNT\(\*\)(?:(?!LIMIT).)*FROM "taskops_dispatch"(?:(?!LIMIT).)*$', re.S)

    with CaptureQueriesContext(connection) as queries:
        admin_client.get(CHANGELIST)
        admin_client.get(CHANGELIST, {"drift": "changed"})

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the paginator must count something"
    assert all("LIMIT" in sql.upper() for sql in counts)
    assert not [sql for sql in counts if unfiltered_count.search(sql)]


def test_paginator_caps_counting_and_says_so(admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EstimatedCountPaginator, "count_limit", 4)
    monkeypatch.setattr(DispatchAdmin, "list_per_page", 2)
    make_rows(6, 1)

    html = admin_client.get(CHANGELIST).content.decode()

    assert "more than 4 dispatches" in html
    paginator = EstimatedCountPaginator(Dispatch.objects.all(), 2)
    assert paginator.count == 5
    assert paginator.capped
    small = EstimatedCountPaginator(Dispatch.objects.filter(pk__lt=0), 2)
    assert small.count == 0
    assert not small.capped
    assert not small.estimated


def test_table_estimate_only_on_postgresql() -> None:
    make_rows(3, 1)
    estimate = table_row_estimate(Dispatch.objects.all())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE taskops_dispatch")
        assert table_row_estimate(Dispatch.objects.all()) == 3
    else:
        assert estimate is None


def test_the_drift_filter_reads_its_partial_index_alone() -> None:
    """The filter's capped count and first page need only the drift index of dispatches with objects."""
    make_rows(3, 1)
    filtered = Dispatch.objects.filter(drift="changed", ref_count__gt=0)
    count_query = filtered.order_by().values("pk")[:10001]
    first_page = filtered.order_by("-enqueued_at", "-pk")[:100]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a tiny table: make the planner show what it would use at scale
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        count_plan, page_plan = count_query.explain(), first_page.explain()
    if connection.vendor == "postgresql":
        assert "Index Only Scan using taskops_dispatch_drift_refs" in count_plan
        assert "Index Scan using taskops_dispatch_drift_refs" in page_plan
        assert "Sort" not in page_plan  # the index gives the changelist's order
    else:
        assert re.search(r"USING (COVERING )?INDEX taskops_dispatch_drift_refs", count_plan)
        assert re.search(r"USING (COVERING )?INDEX taskops_dispatch_drift_refs", page_plan)
        assert "TEMP B-TREE" not in page_plan
