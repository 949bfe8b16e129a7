"""Who writes which column: the one declaration the row builders and upserts derive from.

A dispatch's row is written by two sides that do not wait for each other:
the publisher (its record, written in the background) and the worker (the
start, the end). Either may write first, so every write is an upsert, and
on a conflict each side takes only the columns it owns: a late publisher
write never moves the state back, a worker write never loses the exact
arguments. Names are attribute names (``content_type_id``), which are also
the column names of these models.
"""

from __future__ import annotations

import attrs

from taskops.models import Dispatch, ObjectRef


@attrs.frozen
class Ownership:
    """The columns of one model, by the write that owns them."""

    #: What identifies a row (the conflict target of every upsert).
    key: tuple[str, ...]
    #: The publisher's record: written by its insert, and taken from it on a conflict.
    publisher: tuple[str, ...]
    #: The worker's start: taken from it on a conflict (a subset, as the start knows them).
    start: tuple[str, ...]
    #: Rewritten by the publish of a retry (same task id, published again).
    retry: tuple[str, ...] = ()
    #: Written by the worker at the end of an attempt.
    finish: tuple[str, ...] = ()

    def all(self) -> frozenset[str]:
        return frozenset((*self.key, *self.publisher, *self.start, *self.retry, *self.finish))


DISPATCH = Ownership(
    key=("task_id",),
    # ``source`` is the publisher's: once its record has landed, the row is no
    # longer one the worker had to make up from the headers. ``state`` is not:
    # a late publisher write never moves it back.
    publisher=(
        "source",
        "task_name",
        "args",
        "kwargs",
        "queue",
        "eta",
        "expires",
        "enqueued_at",
        "parent_id",
        "root_id",
        "group_id",
        "in_transaction",
        "ref_count",
        # Operator dispatches (re-dispatch): carried by the operator header.
        "dispatched_by_id",
        "redispatch_of_id",
        "operation_id",
    ),
    start=(
        "state",
        "started_at",
        "received_at",
        "worker",
        "lag",
        "drift",
        "likely_race",
        "stale_action",
        "notes",
    ),
    retry=("args", "kwargs", "eta", "expires", "retries", "state"),
    finish=("state", "finished_at", "runtime", "exception"),
)

REF = Ownership(
    key=("dispatch_id", "argument"),
    publisher=("content_type_id", "object_pk", "object_repr", "digests", "values"),
    start=("drift", "changed_fields", "likely_race", "checked_at"),
)

#: The models each declaration describes (a test holds every column to one).
DECLARED = ((Dispatch, DISPATCH), (ObjectRef, REF))
