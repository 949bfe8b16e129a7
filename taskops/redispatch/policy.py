"""Who may re-dispatch what: allowed tasks, allowed models, the user's permissions."""

from __future__ import annotations

import fnmatch
from typing import Any

from django.db.models import Model

from taskops.conf import taskops_settings
from taskops.wire.limits import current_limits

#: The permission every re-dispatch needs (besides view permission on the objects' models).
PERMISSION = "taskops.redispatch_dispatch"
#: The task option by which a task opts in (``@shared_task(redispatch=True)``).
TASK_OPTION = "redispatch"


def task_allowed(task: Any) -> bool:
    """The task opted in (``redispatch=True``) or its name matches ``TASKOPS["REDISPATCH_TASKS"]``."""
    if getattr(task, TASK_OPTION, None) is True:
        return True
    patterns = taskops_settings.REDISPATCH_TASKS
    return any(fnmatch.fnmatchcase(task.name, pattern) for pattern in patterns)


def model_allowed(model: type[Model]) -> bool:
    """The model may travel as a ref (``TASKOPS["ALLOWED_MODELS"]``; None allows all)."""
    allowed = current_limits().allowed_models
    return allowed is None or model._meta.label_lower in allowed


def may_redispatch(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(PERMISSION))


def may_view(user: Any, model: type[Model]) -> bool:
    """View (or change) permission on ``model``, as the admin reads it."""
    opts = model._meta
    return bool(
        user is not None
        and user.is_active
        and (
            user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
            or user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        )
    )
