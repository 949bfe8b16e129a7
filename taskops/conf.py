"""taskops settings: one ``TASKOPS`` dict, declared once here, read lazily, reset on change.

    from taskops.conf import taskops_settings
    taskops_settings.MAX_DEPTH

:data:`SETTINGS` is the one table of every key: its default, what a valid
value looks like, and a line of documentation. The defaults, the lazy
reader and the system checks ``taskops.E001`` (unknown key) and
``taskops.E002`` (wrong type) all derive from it. Never read at import
time, so ``override_settings(TASKOPS=...)`` reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
from django.conf import settings
from django.core.signals import setting_changed


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf")


def _list_of_str(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < float("inf")


def _dict(value: Any) -> bool:
    return isinstance(value, dict)


def _list_of_regex(value: Any) -> bool:
    if not _list_of_str(value):
        return False
    try:
        for pattern in value:
            re.compile(pattern)
    except re.error:
        return False
    return True


@attrs.frozen
class Setting:
    """One key of ``TASKOPS``."""

    default: Any
    #: What a valid value is, as the system check says it.
    expected: str
    valid: Callable[[Any], bool]
    doc: str


#: Every key of ``TASKOPS``.
SETTINGS: dict[str, Setting] = {
    "ALLOWED_MODELS": Setting(
        None,
        "None or a list of 'app_label.modelname' strings",
        lambda v: v is None or _list_of_str(v),
        "Model labels that may travel as refs; None allows every installed model.",
    ),
    "ATTRS_CLASSES": Setting(
        [], "a list of dotted paths to attrs classes", _list_of_str, "attrs classes that may be decoded."
    ),
    "MAX_DEPTH": Setting(32, "a positive int", _positive_int, "Nesting depth a message may have."),
    "MAX_NODES": Setting(100_000, "a positive int", _positive_int, "JSON values a message may hold."),
    "MAX_REFS": Setting(10_000, "a positive int", _positive_int, "Model references a message may hold."),
    "HEADER_BYTES": Setting(
        32 * 1024,
        "a positive int up to 100000",
        lambda v: _positive_int(v) and v <= 100_000,
        "Bytes the refs may take in a message's taskops header; more are read from the publisher's record.",
    ),
    "MAX_BYTES": Setting(
        16 * 1024 * 1024,
        "a positive int",
        _positive_int,
        "Bytes a message body may hold; a larger one is refused before it is parsed.",
    ),
    "CELERY_APP": Setting(
        None,
        "None or a dotted path to a Celery app",
        lambda v: v is None or isinstance(v, str),
        "The Celery app the system checks inspect ('proj.celery.app'); None: celery.current_app.",
    ),
    "RECORDING": Setting(True, "a bool", _bool, "Record dispatches at all."),
    "STRICT": Setting(False, "a bool", _bool, "Raise recorder errors instead of logging and counting them."),
    "WRITE_BEHIND": Setting(
        True, "a bool", _bool, "Write the publisher's records from a background thread; False: at the call."
    ),
    "START_LINGER": Setting(
        0.1,
        "a number of seconds, 0 or more",
        _seconds,
        "Seconds a worker holds a task's start to write it with the end (one write for a short task); 0: at once.",
    ),
    "WRITE_QUEUE_RECORDS": Setting(
        10_000,
        "a positive int",
        _positive_int,
        "Records waiting for the background writer at most (also what a worker keeps through an outage).",
    ),
    "WRITE_QUEUE_BYTES": Setting(
        32 * 1024 * 1024,
        "a positive int",
        _positive_int,
        "Bytes of records (mostly their arguments) waiting for the background writer at most.",
    ),
    "PUBLISH_WAIT": Setting(
        0.05,
        "a positive number of seconds",
        _positive_number,
        "Seconds a publish waits at most for room in a full writer queue; then its record is dropped and counted.",
    ),
    "SPOOL_DIR": Setting(
        None,
        "None or a folder path",
        lambda v: v is None or (isinstance(v, str) and bool(v)),
        "Where records past the queue's bounds are spooled (JSON lines); None: a folder under the system's temp dir.",
    ),
    "SPOOL_BYTES": Setting(
        256 * 1024 * 1024,
        "an int, 0 or more",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "Bytes of spooled records a process keeps at most (0: no spool); past it records are dropped and counted.",
    ),
    "SNAPSHOT_FIELDS": Setting(
        {},
        "a dict",
        _dict,
        "{'app.model': [field, ...]}: the fields that count for drift (default: all but pk, auto_now).",
    ),
    "SNAPSHOT_EXCLUDE": Setting({}, "a dict", _dict, "{'app.model': [field, ...]}: fields that never count for drift."),
    "SNAPSHOT_VALUE_FIELDS": Setting(
        {},
        "a dict",
        _dict,
        "{'app.model': [field, ...]}: fields whose values, not only digests, are kept (and shown, then and now).",
    ),
    "SENSITIVE_FIELDS": Setting(
        ["password", "passwd", "token", "secret", "key"],
        "a list of regular expressions",
        _list_of_regex,
        "Field names (searched, case-insensitive) whose values the admin never shows, then or now.",
    ),
    "REDACT_KWARGS": Setting(
        [],
        "a list of keyword argument names",
        _list_of_str,
        "Keyword arguments whose values are never stored, for every task (stored as a marker).",
    ),
    "PRUNE_BATCH_SIZE": Setting(5_000, "a positive int", _positive_int, "Rows taskops_prune deletes per transaction."),
    "REDISPATCH_TASKS": Setting(
        [], "a list of task name patterns", _list_of_str, "Tasks operators may re-dispatch (fnmatch patterns)."
    ),
    "REDISPATCH_MAX_CALLS": Setting(50_000, "a positive int", _positive_int, "Most calls one re-dispatch may publish."),
    "REDISPATCH_BACKGROUND_OVER": Setting(
        200, "a positive int", _positive_int, "Calls above which a re-dispatch publishes in a background task."
    ),
    "ALERTS_INTERVAL": Setting(
        60, "a positive int", _positive_int, "Seconds between alert evaluations (a rule's window is at least this)."
    ),
    "WEBHOOK_RETRIES": Setting(
        5,
        "an int, 0 or more",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "Tries after the first for an alert's webhook post that failed.",
    ),
    "WEBHOOK_BACKOFF": Setting(
        2,
        "a positive number of seconds",
        _positive_number,
        "Seconds before a failed webhook post is tried again; doubled for each later try (2, 4, 8, ...).",
    ),
    "METRICS_TOKEN": Setting(
        None,
        "None or a string of at least 16 characters",
        lambda v: v is None or (isinstance(v, str) and len(v) >= 16),
        "Bearer token for the metrics view; None: staff login only.",
    ),
    "METRICS_WINDOW": Setting(300, "a positive int", _positive_int, "Seconds of recent dispatches the metrics cover."),
    "METRICS_CACHE_SECONDS": Setting(
        5, "a positive int", _positive_int, "Seconds a metrics scrape is cached (shared by scrapers and processes)."
    ),
    "METRICS_CACHE": Setting(
        "default",
        "the alias of a cache in CACHES",
        lambda v: isinstance(v, str) and bool(v),
        "The cache that shares a metrics scrape between processes and scrapers (one all web processes reach).",
    ),
    "REDISPATCH_QUEUE": Setting(
        None,
        "None or a queue name",
        lambda v: v is None or (isinstance(v, str) and bool(v)),
        "Queue of the background fan-out task; None: the default queue.",
    ),
    "QUEUE_SUFFIX": Setting(
        ".taskops",
        "a string (empty: no lanes)",
        lambda v: isinstance(v, str),
        "Publishers send each task to its queue's lane (queue name + this), which only workers with "
        "taskops consume; workers consume each queue and its lane. Empty: plain queues (every worker has taskops).",
    ),
    "REDISPATCH_BATCH_SIZE": Setting(
        500, "a positive int", _positive_int, "Calls published (and their progress saved) per batch."
    ),
    "REDISPATCH_STALLED_AFTER": Setting(
        300,
        "a positive number of seconds",
        _positive_number,
        "Seconds without progress after which a queued or publishing re-dispatch has stalled and may be resumed.",
    ),
}


class TaskopsSettings:
    """Attribute access to ``settings.TASKOPS`` merged over the defaults."""

    def __init__(self) -> None:
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TASKOPS", None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in SETTINGS:
            raise AttributeError(f"Invalid taskops setting: {name!r}")
        value = self.user_settings.get(name, SETTINGS[name].default)
        # Cached as a plain attribute: the codec reads limits for every message.
        setattr(self, name, value)
        self._cached.add(name)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()


taskops_settings = TaskopsSettings()


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKOPS":
        taskops_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="taskops.conf.reload")
