"""Benchmarks write a lot: they use databases of their own, beside the configured one."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

#: Exit code of a benchmark that cannot run on this configuration (``make bench`` goes on).
NOT_APPLICABLE = 3


def bench_database_url(suffix: str) -> str | None:
    """``TASKOPS_BENCH_DATABASE_URL``, or ``DATABASE_URL`` with ``_<suffix>`` added to the
    database name; None when neither is PostgreSQL."""
    explicit = os.environ.get("TASKOPS_BENCH_DATABASE_URL")
    url = explicit or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    if explicit:
        return explicit
    parts = urlsplit(url)
    return parts._replace(path=f"/{parts.path.lstrip('/') or 'taskops'}_{suffix}").geturl()


def ensure_database(url: str) -> None:
    """Create the database if the server does not have it yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
