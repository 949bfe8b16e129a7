"""taskops' own Celery tasks, where ``app.autodiscover_tasks()`` looks for them."""

from __future__ import annotations

from taskops.redispatch.tasks import fan_out

__all__ = ["fan_out"]
