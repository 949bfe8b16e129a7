"""taskops settings: one ``TASKOPS`` dict, read lazily, reset on change.

    from taskops.conf import taskops_settings
    taskops_settings.MAX_DEPTH

Never read at import time, so ``override_settings(TASKOPS=...)`` reaches it.
Unknown keys are reported by the system check ``taskops.E001``.
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
    # Codec: decode limits.
    "MAX_DEPTH": 32,
    "MAX_NODES": 100_000,
    "MAX_REFS": 10_000,
    # Recording: record dispatches at all; raise recorder errors instead of logging them.
    "RECORDING": True,
    "STRICT": False,
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
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TASKOPS", None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid taskops setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, DEFAULTS[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


taskops_settings = TaskopsSettings()


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKOPS":
        taskops_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="taskops.conf.reload")
