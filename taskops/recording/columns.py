"""Who writes which column, and which rows a worker's write may take forward.

A dispatch's row is written by two sides that do not wait for each other:
the publisher (its record, written in the background) and the worker (the
receipt of a task that waits for its ETA, the start, the end, revocations,
rejections). Either may write first, so every write is an upsert, and on a
conflict each side takes only the columns it owns: a late publisher write
never moves the state back, a worker write never loses the exact arguments.
Names are attribute names (``content_type_id``), which are also the column
names of these models.

A worker's write also never moves the state back (:class:`Progress`): a late
``RECEIVED`` leaves a started or finished task alone, a finished state is
final, and only a newer attempt (a retry) takes a row further.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from taskops.models import FINISHED_STATES, Dispatch, ObjectRef, State

#: The writes of a row, by who makes them (the names of :class:`Ownership`'s column groups).
Side = Literal["publisher", "start", "received", "retry", "finish"]


@attrs.frozen
class Ownership:
    """The columns of one model, by the write that owns them."""

    #: What identifies a row (the conflict target of every upsert).
    key: tuple[str, ...]
    #: The publisher's record: written by its insert, and taken from it on a conflict.
    publisher: tuple[str, ...]
    #: The worker's start: taken from it on a conflict (a subset, as the start knows them).
    start: tuple[str, ...]
    #: Written by the worker's main process when a task waits for its ETA.
    received: tuple[str, ...] = ()
    #: Rewritten by the publish of a retry (same task id, published again).
    retry: tuple[str, ...] = ()
    #: Written by the worker at the end of an attempt (also a revocation, a rejection, a lost pool child).
    finish: tuple[str, ...] = ()

    def all(self) -> frozenset[str]:
        return frozenset((*self.key, *self.publisher, *self.start, *self.received, *self.retry, *self.finish))

    def written_by(self, side: Side, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` as the columns of one write of ``side``; a column that side does not own is refused.

        A write that set another side's column would take it on a conflict,
        and could move back what the other side wrote.
        """
        foreign = values.keys() - set(getattr(self, side))
        if foreign:
            raise ValueError(f"the {side} write does not own the column(s) {', '.join(sorted(foreign))}")
        return dict(values)


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
        "redacted",
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
    received=("state", "received_at", "worker"),
    retry=("args", "kwargs", "redacted", "eta", "expires", "retries", "state"),
    finish=("state", "finished_at", "runtime", "exception"),
)

REF = Ownership(
    key=("dispatch_id", "argument"),
    publisher=("content_type_id", "object_pk", "object_repr", "digests", "digest_key", "values"),
    start=("drift", "changed_fields", "likely_race", "checked_at"),
)

#: The models each declaration describes (a test holds every column to one).
DECLARED = ((Dispatch, DISPATCH), (ObjectRef, REF))

#: The stage of every finished state.
FINAL_STAGE = 3
#: How far a task has come, by state. A retry's publish starts a new attempt at 0.
STAGES: dict[str, int] = {
    State.PENDING: 0,
    State.RETRY: 0,
    State.RECEIVED: 1,
    State.STARTED: 2,
    **dict.fromkeys(FINISHED_STATES, FINAL_STAGE),
}
#: ``retries`` is a PositiveIntegerField: no attempt counts more.
MAX_RETRIES = 2**31 - 1


@attrs.frozen
class Progress:
    """Which existing rows a worker's write of ``state`` may take over.

    Rows of an older attempt (fewer ``retries``), whatever their state; rows
    of the same attempt that have not come as far (a finished state is final).
    ``retries`` None: the attempt is not known (the worker's main process
    after a lost pool child), so only the state counts.
    """

    state: str
    retries: int | None

    def replaceable_states(self) -> list[str]:
        # A state of the task's own making counts as an end: it never replaces a finished one.
        stage, final = STAGES.get(self.state, FINAL_STAGE), self.state not in STAGES or self.state in FINISHED_STATES
        return sorted(name for name, other in STAGES.items() if other < stage or (other == stage and not final))

    def older_than(self) -> int:
        """Rows with fewer retries than this are an older attempt (-1: none are, the attempt is not known)."""
        return -1 if self.retries is None else self.retries

    def same_attempt_up_to(self) -> int:
        """Rows with at most this many retries (and not an older attempt) are this attempt."""
        return MAX_RETRIES if self.retries is None else self.retries
