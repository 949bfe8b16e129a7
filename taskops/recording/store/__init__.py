"""Where records are written: one store per database vendor, chosen once per alias.

A store upserts the publisher's records (:meth:`~generic.GenericStore.write`),
the worker's start (:meth:`~generic.GenericStore.start`) and runs the
worker's other single-row updates (:meth:`~generic.GenericStore.update`).
PostgreSQL gets one statement per write (data-modifying CTEs over JSON
record sets, committed without waiting for the WAL flush); SQLite the same
JSON record sets through ``json_each``, a batch in one transaction; every
other database, and either of them inside a caller's transaction, the ORM's
upserts.
"""

from __future__ import annotations

import functools

from django.db import connections

from taskops.recording.store.generic import GenericStore
from taskops.recording.store.postgresql import PostgreSQLStore
from taskops.recording.store.sqlite import SQLiteStore

__all__ = ["GenericStore", "PostgreSQLStore", "SQLiteStore", "store_for"]


@functools.cache
def store_for(using: str) -> GenericStore:
    """The store of a database alias (its vendor does not change while the process runs)."""
    vendor = connections[using].vendor
    if vendor == "postgresql":
        return PostgreSQLStore()
    return SQLiteStore() if vendor == "sqlite" else GenericStore()
