"""“Run a task for the selected objects”: an action on the changelist of every model, no ModelAdmin edited.

Importing this module adds it to the default admin site
(``admin.site.add_action``) under the name ``RUN_TASK_ACTION``. It keeps
the selection on the server (``tickets.keep_selection``: one row, whatever
its size, up to ``REDISPATCH_MAX_CALLS``) and leads to the generic form,
pre-filled with the model and the selection; the form's preview is the
confirmation. One call per object, or one with the list where the task's
parameter is ``list[Model]`` (the service decides).

It is listed only where it works. Django asks a site-wide action's
``allowed_permissions`` of the changelist's own ``ModelAdmin``, so this
module gives ``django.contrib.admin.ModelAdmin`` one method,
``has_taskops_run_task_permission(request)`` (added at import, only if
absent): the user may view the model and re-dispatch, and some allowed task
takes the model (that answer is cached per model and settings). A POST of
the action where it is not listed is refused by Django ("No action
selected."). To leave a model out, give its ``ModelAdmin`` the
``WithoutRunTask`` mixin (as taskops' own admins have) or override that
method to return False; to leave every model out,
``admin.site.disable_action(RUN_TASK_ACTION)``.

Cost: a count, then the selection's pks in chunks, one insert.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
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
#: The permission the action asks of each ``ModelAdmin`` (Django calls ``has_<it>_permission(request)``).
RUN_TASK_PERMISSION = "taskops_run_task"
#: Models whose answer to "does an allowed task take it?" is kept, per settings.
TAKES_CACHE_SIZE = 1024


def some_task_takes(model: type[Model]) -> bool:
    """An allowed task takes ``model``, and it may travel: asked on every changelist page, so cached.

    The key holds what the answer depends on (the settings' values, the tasks registered), so a
    changed setting or a newly registered task is never answered from an old entry.
    """
    allowed = taskops_settings.ALLOWED_MODELS
    return _some_task_takes(
        model,
        tuple(taskops_settings.REDISPATCH_TASKS),
        None if allowed is None else tuple(allowed),
        tuple(current_app.tasks),
    )


@functools.lru_cache(maxsize=TAKES_CACHE_SIZE)
def _some_task_takes(
    model: type[Model], patterns: tuple[str, ...], allowed_models: tuple[str, ...] | None, tasks: tuple[str, ...]
) -> bool:
    return policy.model_allowed(model) and bool(allowed_tasks(model))


def has_taskops_run_task_permission(modeladmin: admin.ModelAdmin[Any], request: HttpRequest) -> bool:
    """Whether "Run a task for the selected objects" is listed: the user may view the model and
    re-dispatch, and an allowed task takes the model (``WithoutRunTask`` says no)."""
    return bool(
        modeladmin.has_view_permission(request)
        and policy.may_redispatch(request.user)
        and some_task_takes(modeladmin.model)
    )


def add_permission_method() -> None:
    """Give ``ModelAdmin`` the permission method the action asks for, unless it has one already."""
    name = f"has_{RUN_TASK_PERMISSION}_permission"
    if not hasattr(admin.ModelAdmin, name):
        setattr(admin.ModelAdmin, name, has_taskops_run_task_permission)


@admin.action(
    permissions=[RUN_TASK_PERMISSION], description=gettext_lazy("Run a task for the selected %(verbose_name_plural)s")
)
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

    def has_taskops_run_task_permission(self, request: HttpRequest) -> bool:
        """Never: the action is not listed on this changelist (and a POST of it is refused)."""
        return False


add_permission_method()
admin.site.add_action(run_task_for_selected, RUN_TASK_ACTION)
