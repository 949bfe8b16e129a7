"""taskops settings: one ``TASKOPS`` dict, read lazily, reset on change.

    from taskops.conf import taskops_settings
    taskops_settings.MAX_DEPTH

Never read at import time, so ``override_settings(TASKOPS=...)`` reaches it.
Unknown keys are reported by the system check ``taskops.E001``, wrongly
typed values by ``taskops.E002`` (see ``taskops/checks.py``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

#: Every key of ``TASKOPS`` with its default.
DEFAULTS: dict[str, Any] = {
    # Codec: model labels ("app_label.modelname") that may travel as refs;
    # None allows every installed model.
    "ALLOWED_MODELS": None,
    # Codec: dotted paths of attrs classes that may be decoded.
    "ATTRS_CLASSES": [],
    # Codec: decode limits per message (or result): nesting depth, JSON values,
    # model references. Anything over them makes the task fail with CodecError.
    "MAX_DEPTH": 32,
    "MAX_NODES": 100_000,
    "MAX_REFS": 10_000,
    # The Celery app the system checks inspect, as a dotted path
    # ("proj.celery.app"); None uses celery.current_app.
    "CELERY_APP": None,
    # Recording: record dispatches at all; raise recorder errors instead of logging them.
    "RECORDING": True,
    "STRICT": False,
    # Recording: a background thread per process writes the publisher's rows,
    # so that delay() does not wait for the database. False writes at the call.
    "WRITE_BEHIND": True,
    # Snapshots: {"app.model": ["field", ...]} fields that count for drift
    # (default: every concrete field but the pk and auto_now fields), fields never to count, and
    # fields whose values (not only digests) are kept.
    "SNAPSHOT_FIELDS": {},
    "SNAPSHOT_EXCLUDE": {},
    "SNAPSHOT_VALUE_FIELDS": {},
    # Pruning.
    "PRUNE_BATCH_SIZE": 5_000,
}


class TaskopsSettings:
    """Attribute access to ``settings.TASKOPS`` merged over ``DEFAULTS``."""

    def __init__(self) -> None:
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TASKOPS", None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid taskops setting: {name!r}")
        value = self.user_settings.get(name, DEFAULTS[name])
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
