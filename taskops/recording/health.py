"""Database outages: told apart from bad records, and broken connections dropped before use.

A long-lived process (a worker, the writer thread) keeps its connections
between uses. After a cut, Django marks a connection that raised
(``errors_occurred``) but does not drop it until something asks: Celery asks
only every ``CELERY_DB_REUSE_MAX`` tasks, so every task in between would fail
with "the connection is closed". :func:`drop_broken_connections` asks before
taskops uses them (no query unless the connection raised before), and
:func:`on_fresh_connection` tries a read once more on a new connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

R = TypeVar("R")

#: What SQLite says when another process holds the file, or it cannot be written for now.
SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "readonly", "disk i/o")


def is_outage(exc: BaseException, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether ``exc`` says the database cannot be reached now (try again later), not that a record is bad."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if connections[using].vendor == "sqlite":
        # SQLite raises OperationalError for a missing table too: only these pass.
        return any(word in str(exc).lower() for word in SQLITE_TRANSIENT)
    return True


def drop_broken_connections() -> None:
    """Close this thread's connections that raised and no longer answer (not inside a transaction)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block or not connection.errors_occurred:
            continue
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def close_after_outage() -> None:
    """Close this thread's connections that are not inside a transaction: the next use connects afresh."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def on_fresh_connection(read: Callable[[], R]) -> R:
    """``read()``; after an outage error outside a transaction, once more on new connections."""
    drop_broken_connections()
    try:
        return read()
    except (OperationalError, InterfaceError) as exc:
        if not is_outage(exc) or any(c.in_atomic_block for c in connections.all(initialized_only=True)):
            raise
    close_after_outage()
    return read()
