"""Recording never breaks a dispatch or a task: errors are logged and counted.

``TASKOPS["STRICT"] = True`` raises them instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from taskops.conf import taskops_settings

logger = logging.getLogger("taskops.recording")

_errors = 0
_errors_lock = threading.Lock()


class StrictRecordingError(BaseException):
    """A recorder error under ``TASKOPS["STRICT"]``.

    A ``BaseException`` on purpose: Celery's signal dispatch logs and swallows
    every ``Exception`` a receiver raises, and STRICT means the caller (the
    code calling ``delay``) must see it.
    """


def error_count() -> int:
    """Recorder errors logged (not raised) in this process so far."""
    return _errors


def enabled() -> bool:
    """Whether dispatches are recorded at all (``TASKOPS["RECORDING"]``)."""
    return bool(taskops_settings.RECORDING)


@contextmanager
def guarded(what: str, in_signal: bool = True) -> Iterator[None]:
    """Log and count a recorder error instead of breaking the caller (unless STRICT)."""
    try:
        yield
    except Exception as exc:
        if taskops_settings.STRICT:
            if in_signal:
                raise StrictRecordingError(f"taskops: recording failed while {what}: {exc!r}") from exc
            raise
        log_error(what)


def log_error(what: str) -> None:
    """Log the exception being handled and count it (from any thread)."""
    count_error()
    logger.exception("taskops: recording failed while %s", what)


def count_error() -> None:
    """Count an error that was logged and not raised (``taskops_recording_errors_total``), from any thread."""
    global _errors
    with _errors_lock:
        _errors += 1
