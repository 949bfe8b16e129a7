"""The stacks a benchmark runs on: the configured one, or PostgreSQL + Redis and SQLite + filesystem both.

``make bench STACKS=both`` (or ``TASKOPS_BENCH_STACKS=both``) runs the
benchmarks that depend on the stack once per stack, each in a process of its
own: ``pg`` is PostgreSQL and Redis (``TASKOPS_BENCH_PG_URL`` and
``TASKOPS_BENCH_REDIS_URL``, else ``DATABASE_URL`` and ``CELERY_BROKER_URL``
when they name them, else the local servers' defaults), ``sqlite`` is the
embedded default (SQLite and kombu's filesystem broker under ``var/``).
Unset or ``configured``: whatever the environment configures.
"""

from __future__ import annotations

import os

import attrs

#: The servers of ``pg`` when nothing names them (the benchmarks use databases beside it, never it).
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/taskops"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CHOICES = ("configured", "pg", "sqlite", "both")


@attrs.frozen
class Stack:
    name: str
    #: Variables set in the benchmark's environment (None: removed from it).
    env: dict[str, str | None]

    def environ(self) -> dict[str, str]:
        base = {key: value for key, value in os.environ.items() if key not in self.env}
        return {**base, **{key: value for key, value in self.env.items() if value is not None}}


def _pg() -> Stack:
    database = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    url = os.environ.get("TASKOPS_BENCH_PG_URL") or (
        database if database.startswith(("postgres://", "postgresql://")) else DEFAULT_PG_URL
    )
    redis = os.environ.get("TASKOPS_BENCH_REDIS_URL") or (broker if broker.startswith("redis") else DEFAULT_REDIS_URL)
    return Stack("pg+redis", {"DATABASE_URL": url, "CELERY_BROKER_URL": redis, "TASKOPS_BENCH_DATABASE_URL": None})


def _sqlite() -> Stack:
    return Stack(
        "sqlite+filesystem", {"DATABASE_URL": None, "CELERY_BROKER_URL": None, "TASKOPS_BENCH_DATABASE_URL": None}
    )


def chosen(choice: str | None = None) -> list[Stack]:
    """The stacks ``choice`` (default: ``TASKOPS_BENCH_STACKS``) names."""
    choice = (choice or os.environ.get("TASKOPS_BENCH_STACKS") or "configured").strip().lower()
    if choice not in CHOICES:
        raise SystemExit(f"TASKOPS_BENCH_STACKS / STACKS: expected one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "pg":
        return [_pg()]
    if choice == "sqlite":
        return [_sqlite()]
    if choice == "both":
        return [_pg(), _sqlite()]
    return [Stack("configured", {})]


def stack_name(vendor: str, broker_url: str) -> str:
    """``pg+redis``, ``sqlite+filesystem``, ...: the database vendor and the broker's scheme."""
    database = {"postgresql": "pg"}.get(vendor, vendor)
    return f"{database}+{broker_url.split(':')[0] or 'filesystem'}"
