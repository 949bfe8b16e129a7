"""The admin on a million dispatches: median server time of its busiest pages.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskops python -m bench.admin

PostgreSQL only. It never writes to the database ``DATABASE_URL`` names: it
uses one beside it, with ``_admin_bench`` added to the name (created if
missing), or ``TASKOPS_BENCH_DATABASE_URL`` when set, filled once with a
million dispatches (``bench.million``; ``--regenerate`` to start over). Each
page is then requested with Django's test client as a superuser, once to
warm up and ``--runs`` times measured; the table shows the median against
its target.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.databases import NOT_APPLICABLE
from bench.million import open_database, parse_options, row_estimate

#: (name, path, target in milliseconds)
Page = tuple[str, str, float]


def pages() -> list[Page]:
    from django.contrib.contenttypes.models import ContentType
    from django.urls import reverse

    from demo.models import Question

    changelist = reverse("admin:taskops_dispatch_changelist")
    question_type = ContentType.objects.get_for_model(Question)
    return [
        ("changelist, first page", changelist, 300),
        ("changelist, drift=changed", changelist + "?drift=changed", 300),
        ("dashboard, 1 h window", reverse("admin:taskops_dispatch_dashboard") + "?window=1h", 500),
        ("history of one object", reverse("admin:taskops_dispatch_object_history", args=[question_type.pk, 1]), 50),
    ]


def measure(client: Any, path: str, runs: int) -> list[float]:
    """Milliseconds per request, after one warm-up request."""
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options("admin", __doc__, "requests per page", argv)
    if not open_database("admin", options):
        return NOT_APPLICABLE
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "", None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    print(f"\n{row_estimate():,} dispatches (estimate), median of {max(options.runs, 5)} requests each\n")
    print(f"{'page':<28} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'target':>8}  ok")
    missed = 0
    for name, path, target in pages():
        timings = measure(client, path, max(options.runs, 5))
        median = statistics.median(timings)
        ok = median <= target
        missed += not ok
        verdict = "yes" if ok else "NO"
        print(f"{name:<28} {median:>10.1f} {min(timings):>8.1f} {max(timings):>8.1f} {target:>8.0f}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
