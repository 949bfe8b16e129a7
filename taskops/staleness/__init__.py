"""Staleness: snapshots of rows at dispatch, the judgement at start, pending work.

- :mod:`~taskops.staleness.snapshot`: per-field digests of an instance, from memory;
- :mod:`~taskops.staleness.judge`: lag and drift of one attempt (a pure function);
- :mod:`~taskops.staleness.pending`: queued dispatches judged against the database now;
- :mod:`~taskops.staleness.spilled`: refs left out of a header over budget, read from the record;
- :mod:`~taskops.staleness.skip`: how a skipped task ends (``TaskSkipped``, state ``REVOKED``).
"""

from __future__ import annotations

from taskops.staleness.judge import (
    DRIFT_ORDER,
    RefVerdict,
    StaleObjectError,
    StartVerdict,
    compare,
    judge_start,
    worst,
)
from taskops.staleness.pending import PendingVerdict, judge_pending
from taskops.staleness.skip import Skip, TaskSkipped
from taskops.staleness.spilled import with_recorded_refs

__all__ = [
    "DRIFT_ORDER",
    "PendingVerdict",
    "RefVerdict",
    "Skip",
    "StaleObjectError",
    "StartVerdict",
    "TaskSkipped",
    "compare",
    "judge_pending",
    "judge_start",
    "with_recorded_refs",
    "worst",
]
