"""“Run a task for the selected objects”: an action on the changelist of every model, no ModelAdmin edited.

Importing this module adds it to the default admin site
(``admin.site.add_action``) under the name ``RUN_TASK_ACTION``. It keeps
the selection on the server (``tickets.keep_selection``: one row, whatever
its size, up to ``REDISPATCH_MAX_CALLS``) and leads to the generic form,
pre-filled with the model and the selection; the form's preview is the
confirmation. One call per object, or one with the list where the task's
parameter is ``list[Model]`` (the service decides).

Django shows a site-wide action to whoever passes its permission check,
which can only ask the changelist's own ``ModelAdmin``: so the action is
listed for users who may view the model, and refuses, with a message, those
who may not re-dispatch or a model no allowed task takes. To leave a model
out, give its ``ModelAdmin`` the ``WithoutRunTask`` mixin (as taskops' own
admins have) or pop the action in its ``get_actions``; to leave every model
out, ``admin.site.disable_action(RUN_TASK_ACTION)``.

Cost: a count, then the selection's pks in chunks, one insert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from taskops.admin.redispatch import tickets
from taskops.admin.redispatch.form import allowed_tasks
from taskops.conf import taskops_settings
from taskops.redispatch import policy

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin

#: The action's name on the admin site (``admin.site.disable_action(RUN_TASK_ACTION)`` removes it).
RUN_TASK_ACTION = "taskops_run_task"


@admin.action(permissions=["view"], description=gettext_lazy("Run a task for the selected %(verbose_name_plural)s"))
def run_task_for_selected(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    """Keep the selection on the server and open the generic form with it."""
    problem = selection_problem(request, queryset)
    form_url = ""
    try:
        form_url = reverse(f"{modeladmin.admin_site.name}:taskops_dispatch_redispatch")
    except NoReverseMatch:
        problem = problem or _("taskops' admin is not on this admin site.")
    if problem:
        modeladmin.message_user(request, problem, messages.ERROR)
        return None
    token = tickets.keep_selection(request.user, queryset)
    return HttpResponseRedirect(f"{form_url}?{urlencode({'selection': token})}")


def selection_problem(request: HttpRequest, queryset: QuerySet[Any]) -> str:
    """Why this selection cannot go to the form, or ``""``."""
    opts = queryset.model._meta
    if not policy.may_redispatch(request.user):
        return _("You may not re-dispatch tasks (%(permission)s).") % {"permission": policy.PERMISSION}
    if not allowed_tasks(queryset.model):  # the form's own list: it would offer nothing
        return _("No task that re-dispatch allows takes %(model)s.") % {"model": opts.verbose_name_plural}
    count, cap = queryset.count(), int(taskops_settings.REDISPATCH_MAX_CALLS)
    if count > cap:
        return _("%(count)s %(model)s selected, more than the %(cap)s one re-dispatch may take.") % {
            "count": count,
            "model": opts.verbose_name_plural,
            "cap": cap,
        }
    return ""


class WithoutRunTask(ModelAdminBase):
    """A taskops ``ModelAdmin``: its own actions, not "Run a task for the selected objects" (no task's objects)."""

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """The admin's actions but ``RUN_TASK_ACTION``; ``action_location``: Django 6.1's, passed on when given."""
        where = {} if action_location is None else {"action_location": action_location}
        actions: dict[str, Any] = super().get_actions(request, **where)
        actions.pop(RUN_TASK_ACTION, None)
        return actions


admin.site.add_action(run_task_for_selected, RUN_TASK_ACTION)
