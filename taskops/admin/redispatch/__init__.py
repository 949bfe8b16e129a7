"""Re-dispatch in the admin: the generic form, the two bulk actions, the progress page, the audit.

Every path asks the one service (``taskops.redispatch``) for a checked
draft and submits it; nothing here publishes on its own. Modules:

- ``fields``: the form's inputs, read from a task's signature (object
  pickers on the admin's autocomplete, typed inputs, attrs attributes);
- ``form``: ``RedispatchForm`` (and ``PublishForm``: queue, countdown,
  priority, reason), a refusal's problems shown at their fields;
- ``autocomplete``: the pickers' search (Django's autocomplete view, for a
  task's parameter);
- ``preview``: the chosen objects, or dispatches, judged as they are now;
- ``tickets``: selections and one-time confirmations, kept on the server;
- ``views``: the form's page on ``DispatchAdmin``
  (``admin:taskops_dispatch_redispatch``);
- ``replay``: the Dispatch changelist's "Re-dispatch selected" action;
- ``actions``: "Run a task for the selected objects" on the changelists of
  models an allowed task takes (``admin.site.add_action``, listed by
  ``ModelAdmin.has_taskops_run_task_permission``; leave a model out with the
  ``WithoutRunTask`` mixin, or by returning False from that method);
- ``audit``: ``RedispatchAdmin``, each re-dispatch's page and progress;
- ``filters``: the Dispatch changelist's "operator dispatches".
"""

from __future__ import annotations

from taskops.admin.redispatch.actions import RUN_TASK_ACTION, WithoutRunTask, run_task_for_selected
from taskops.admin.redispatch.audit import RedispatchAdmin
from taskops.admin.redispatch.filters import OperationFilter
from taskops.admin.redispatch.replay import ReplayAction
from taskops.admin.redispatch.views import RedispatchFormViews


class RedispatchViews(ReplayAction, RedispatchFormViews):
    """What ``DispatchAdmin`` gets for re-dispatch: the form and its URLs, the replay action, the permission."""


__all__ = [
    "RUN_TASK_ACTION",
    "OperationFilter",
    "RedispatchAdmin",
    "RedispatchViews",
    "WithoutRunTask",
    "run_task_for_selected",
]
