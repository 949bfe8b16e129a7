"""A million dispatches in PostgreSQL, for the benchmarks that read them (``bench.admin``, ``bench.alerts``).

``open_database`` points Django at a benchmark's own database (never the one
``DATABASE_URL`` names: one beside it, with ``_<suffix>`` added to the name,
or ``TASKOPS_BENCH_DATABASE_URL``), migrates it and, the first time, fills it
with 1,000,000 ``Dispatch`` rows and ~1.5 ``ObjectRef`` rows each, in bulk
with ``INSERT ... SELECT generate_series`` (a minute or so); later runs reuse
the rows. The rows are spread over the 30 days before they were generated,
the newest 200 of them unfinished; ``newest_enqueue`` says when that was, so
that a benchmark can judge windows as of then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.databases import bench_database_url, ensure_database

QUESTIONS = 2_000
ANSWERS = 3_000
TASK_NAMES = [
    "demo.tasks.moderate_answer",
    "demo.tasks.flag_comment",
    "demo.tasks.notify_followers",
    "demo.tasks.rebuild_summary",
    "demo.tasks.summarize_thread",
    "demo.tasks.count_words",
]


DISPATCH_SQL = """
INSERT INTO taskops_dispatch (
    task_id, task_name, state, args, kwargs, queue, eta, expires, enqueued_at, received_at,
    started_at, finished_at, lag, runtime, worker, retries, parent_id, root_id, group_id,
    in_transaction, drift, likely_race, ref_count, stale_action, exception, source, notes, redacted
)
SELECT
    md5(i::text)::uuid::text,
    (%(task_names)s::text[])[1 + i %% %(task_count)s],
    s.state,
    '[{"__type__": "taskops.model", "__value__": {"model": "demo.question", "pk": '
        || (1 + i %% %(questions)s) || '}}]',
    '{}',
    CASE WHEN i %% 10 = 0 THEN 'mail' ELSE 'celery' END,
    NULL, NULL,
    s.enqueued_at,
    CASE WHEN s.started THEN s.enqueued_at + s.lag END,
    CASE WHEN s.started THEN s.enqueued_at + s.lag END,
    CASE WHEN s.started AND s.state <> 'STARTED' THEN s.enqueued_at + s.lag + interval '120 ms' END,
    CASE WHEN s.started THEN s.lag END,
    CASE WHEN s.started AND s.state <> 'STARTED' THEN interval '120 ms' END,
    CASE WHEN s.started THEN 'celery@bench-' || (i %% 4) ELSE '' END,
    CASE WHEN i %% 40 = 0 THEN 1 ELSE 0 END,
    '', '', '',
    i %% 7 = 0,
    CASE WHEN NOT s.started THEN 'pending' WHEN i %% 137 = 0 THEN 'missing' WHEN i %% 20 = 0 THEN 'changed'
         ELSE 'unchanged' END,
    s.started AND i %% 274 = 0,
    CASE WHEN i %% 2 = 0 THEN 2 ELSE 1 END,
    '', '', 'publisher', '', false
FROM generate_series(1, %(rows)s) AS i
CROSS JOIN LATERAL (
    SELECT
        now() - (i * interval '30 days' / %(rows)s) AS enqueued_at,
        make_interval(secs => (i %% 1000) / 250.0 + CASE WHEN i %% 100 = 0 THEN 90 ELSE 0 END) AS lag,
        CASE WHEN i <= 200 AND i %% 4 = 0 THEN 'PENDING' WHEN i <= 200 AND i %% 4 = 1 THEN 'STARTED'
             WHEN i %% 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END AS state,
        NOT (i <= 200 AND i %% 4 = 0) AS started
) AS s
"""

REFS_SQL = """
INSERT INTO taskops_objectref (
    dispatch_id, content_type_id, object_pk, argument, object_repr, digests, "values",
    drift, changed_fields, likely_race, checked_at, digest_key
)
SELECT d.id, %(content_type)s, (1 + d.id %% %(modulo)s)::text, %(argument)s,
       %(label)s || ' ' || (1 + d.id %% %(modulo)s), '{}'::jsonb, '{}'::jsonb, d.drift,
       CASE WHEN d.drift = 'changed' THEN '["body"]'::jsonb ELSE '[]'::jsonb END, d.likely_race, d.started_at, ''
FROM taskops_dispatch d
WHERE d.id %% %(every)s = 0
"""


#: The tables loaded in bulk: their indexes and constraints (but the primary keys) are built after the load.
LOADED_TABLES = ("taskops_dispatch", "taskops_objectref")

SAVED_CONSTRAINTS_SQL = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f')
ORDER BY contype DESC
"""
SAVED_INDEXES_SQL = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)
"""


def without_indexes(cursor: Any) -> list[str]:
    """Drop the loaded tables' secondary indexes and their unique and foreign key constraints;
    the statements that make them again (a sort per index after the load, instead of a
    random insert per row into each of them)."""
    cursor.execute(SAVED_CONSTRAINTS_SQL, [list(LOADED_TABLES)])
    constraints = cursor.fetchall()
    cursor.execute(SAVED_INDEXES_SQL, [list(LOADED_TABLES)])
    indexes = cursor.fetchall()
    for table, name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    # Unique constraints first (a foreign key may need one), then foreign keys, then the other indexes.
    return [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition in constraints[::-1]
    ] + [definition for _, definition in indexes]


def generate(rows: int) -> None:
    """Fresh demo objects, dispatches and refs, then VACUUM ANALYZE (estimates, index-only scans).

    The rows are loaded into tables without their secondary indexes and
    constraints, which are built afterwards: 5,000,000 dispatches in minutes.
    """
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from demo.models import Answer, Question

    started = time.perf_counter()
    # One transaction: a load that fails leaves the tables as they were, indexes included.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            "TRUNCATE taskops_objectref, taskops_dispatch, demo_comment, demo_answer, demo_question "
            "RESTART IDENTITY CASCADE"
        )
        rebuild = without_indexes(cursor)
        cursor.execute(
            "INSERT INTO demo_question (title, body, summary, created_at, updated_at) "
            "SELECT 'Question ' || i, 'Body of question ' || i, '', now(), now() FROM generate_series(1, %s) i",
            [QUESTIONS],
        )
        cursor.execute(
            "INSERT INTO demo_answer (question_id, body, status, score, created_at, updated_at) "
            "SELECT 1 + i %% %s, 'Answer ' || i, 'approved', i %% 10, now(), now() FROM generate_series(1, %s) i",
            [QUESTIONS, ANSWERS],
        )
        params: dict[str, Any] = {
            "task_names": TASK_NAMES,
            "task_count": len(TASK_NAMES),
            "questions": QUESTIONS,
            "rows": rows,
        }
        cursor.execute(DISPATCH_SQL, params)
        print(f"  {rows:,} dispatches in {time.perf_counter() - started:.1f} s", flush=True)
        for model, modulo, every, argument in ((Question, QUESTIONS, 1, "args[0]"), (Answer, ANSWERS, 2, "args[1]")):
            content_type = ContentType.objects.get_for_model(model)
            cursor.execute(
                REFS_SQL,
                {
                    "content_type": content_type.pk,
                    "modulo": modulo,
                    "every": every,
                    "argument": argument,
                    "label": model._meta.object_name,
                },
            )
        print(f"  refs in {time.perf_counter() - started:.1f} s", flush=True)
        for statement in rebuild:
            cursor.execute(statement)
        print(f"  {len(rebuild)} indexes and constraints in {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE taskops_dispatch")
        cursor.execute("VACUUM ANALYZE taskops_objectref")
    print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)


def row_estimate() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'taskops_dispatch'::regclass")
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0


def newest_enqueue() -> dt.datetime:
    """When the newest dispatch was enqueued: the moment the rows were generated."""
    from django.db.models import Max

    from taskops.models import Dispatch

    newest: dt.datetime | None = Dispatch.objects.aggregate(newest=Max("enqueued_at"))["newest"]
    assert newest is not None, "no dispatches: generate them first"
    return newest


def parse_options(name: str, doc: str, measured: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The options every benchmark of these rows takes: how many rows, how many measured runs, start over."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="dispatches to generate (default 1,000,000)")
    parser.add_argument(
        "--sizes", default="100000,1000000,5000000", help="bench.admin without --rows: the sizes measured, one by one"
    )
    parser.add_argument("--runs", type=int, default=7, help=f"measured {measured} (at least 5)")
    parser.add_argument("--regenerate", action="store_true", help="drop and generate the rows again")
    options = parser.parse_args(argv)
    options.rows_given = options.rows is not None
    if options.rows is None:
        options.rows = 1_000_000
    return options


def open_database(name: str, options: argparse.Namespace) -> bool:
    """Set Django up on benchmark ``name``'s own database, migrated and filled; False (and why) without PostgreSQL."""
    url = bench_database_url(f"{name}_bench")
    if url is None:
        print(f"bench.{name}: not run, it needs DATABASE_URL=postgres://... (it uses a database of its own)")
        return False
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert settings.STATIC_ROOT, "the host project's settings set STATIC_ROOT"
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # the metrics scrape's cache
    if options.regenerate or row_estimate() < options.rows * 0.9:
        print(f"Generating {options.rows:,} dispatches ...", flush=True)
        generate(options.rows)
    return True
