"""The admin on 100,000, 1,000,000 and 5,000,000 dispatches: median server time of its busiest pages.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskops python -m bench.admin [--sizes 100000,1000000,5000000]
    DATABASE_URL=... python -m bench.admin --rows 5000000      # one size

PostgreSQL only. It never writes to the database ``DATABASE_URL`` names:
each size has a database beside it, with ``_admin_<size>_bench`` added to
the name (created if missing), filled once (``bench.million``, set-based
SQL; ``--regenerate`` to start over). Each page is requested with Django's
test client as a superuser, once to warm up and ``--runs`` times measured;
one line per page and size with its median against its target. The pages
must stay flat as the rows grow: every one of them is bound by an index.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.databases import NOT_APPLICABLE, bench_database_url
from bench.million import open_database, parse_options

#: (name, path, target in milliseconds)
Page = tuple[str, str, float]


def pages() -> list[Page]:
    from django.contrib.contenttypes.models import ContentType
    from django.urls import reverse

    from demo.models import Question

    changelist = reverse("admin:taskops_dispatch_changelist")
    question_type = ContentType.objects.get_for_model(Question)
    return [
        ("changelist, first page", changelist, 150),
        ("changelist, drift=changed", changelist + "?drift=changed", 200),
        ("dashboard, 24 h window", reverse("admin:taskops_dispatch_dashboard") + "?window=24h", 300),
        ("history of one object", reverse("admin:taskops_dispatch_object_history", args=[question_type.pk, 1]), 30),
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


SIZES = (100_000, 1_000_000, 5_000_000)


def size_label(rows: int) -> str:
    """``100k``, ``1m``, ``5m``: the rows in a database's name."""
    return f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1_000}k"


def one_size(options: argparse.Namespace) -> int:
    if not open_database(f"admin_{size_label(options.rows)}", options):
        return NOT_APPLICABLE
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "", None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    runs = max(options.runs, 5)
    missed = 0
    for name, path, target in pages():
        timings = measure(client, path, runs)
        median = statistics.median(timings)
        ok = median <= target
        missed += not ok
        print(
            f"admin       {name:<27} {options.rows:>9,} rows  median {median:6.1f} ms "
            f"(min {min(timings):6.1f}, max {max(timings):6.1f}, {runs} runs)  target <= {target:.0f} ms  "
            f"{'ok' if ok else 'MISSED'}",
            flush=True,
        )
    return 1 if missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options("admin", __doc__, "requests per page", argv)
    if options.rows_given:
        return one_size(options)
    if bench_database_url("admin") is None:
        print("bench.admin: not run, it needs DATABASE_URL=postgres://... (it uses databases of its own)")
        return NOT_APPLICABLE
    # One process per size: Django is set up once per process, on one database.
    codes = []
    for rows in (int(size) for size in options.sizes.split(",")):
        command = [sys.executable, "-m", "bench.admin", "--rows", str(rows), "--runs", str(options.runs)]
        codes.append(subprocess.run(command + (["--regenerate"] if options.regenerate else []), check=False).returncode)
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
