"""``RedispatchAdmin``: the audit of operator re-dispatches, read-only, and each one's page with its progress.

The list: when, who, which task, which kind, how many calls were published
and skipped, the outcome. A re-dispatch's own page (its change page,
replaced on purpose: the audit is never edited) is also its progress page:
a bar of published and skipped calls over all of them that htmx refreshes
(the ``progress`` partial of the same template) until the re-dispatch
settles or stalls, then stops (``HttpResponseStopPolling``); the summary
(published, skipped by note, outcome, error); each call with its state,
note and new dispatch; a "Resume" button for a stopped or stalled one.

Viewing needs ``taskops.view_redispatch`` or the re-dispatch permission (an
operator follows what they started); resuming needs the latter, and passes
the service's checks for the user who resumes (``check_resume``: view
permission on every model involved, the task still allowed). What the pages
show of the operator and the objects follows ``Visibility``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_htmx.http import HttpResponseStopPolling

from taskops.admin.arguments import ArgumentPrinter
from taskops.admin.change_history import VisibleChangeHistory
from taskops.admin.display import moment_html
from taskops.admin.links import Linker
from taskops.admin.pages import AdminPages
from taskops.admin.params import CheckedChangelist
from taskops.admin.redispatch.actions import WithoutRunTask
from taskops.admin.redispatch.filters import OperationFilter
from taskops.admin.redispatch.progress import ProgressRows, items_page, plan_summary, progress_of
from taskops.models import Redispatch
from taskops.redispatch import Refused, policy, resume
from taskops.redispatch.publish import skipped_by_note
from taskops.redispatch.resumption import check_resume, is_stalled

#: CSS class of each outcome's badge (colours live in taskops/admin.css).
OUTCOME_TONES = {
    Redispatch.Outcome.QUEUED: "idle",
    Redispatch.Outcome.RUNNING: "busy",
    Redispatch.Outcome.DONE: "ok",
    Redispatch.Outcome.PARTIAL: "warn",
    Redispatch.Outcome.FAILED: "bad",
}


def outcome_badge(redispatch: Redispatch) -> SafeString:
    tone = OUTCOME_TONES[Redispatch.Outcome(redispatch.outcome)]
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', tone, redispatch.get_outcome_display())


@admin.register(Redispatch)
class RedispatchAdmin(ProgressRows, VisibleChangeHistory, WithoutRunTask, CheckedChangelist, AdminPages):
    """Browse re-dispatches; follow one's progress; resume a stopped one; never edit."""

    list_display = ["when", "operator", "task", "kind", "counts", "outcome_badge"]
    list_filter = ["kind", "outcome", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["user"]
    ordering = ["-created_at", "-pk"]
    search_fields = ["task_name"]
    list_per_page = 50

    #: The re-dispatch's page; None: the first found of ``admin/taskops/redispatch/progress.html``,
    #: ``admin/taskops/progress.html``, ``admin/progress.html``.
    progress_template: str | None = None
    #: Seconds between the progress bar's refreshes, while the re-dispatch is under way.
    progress_refresh_seconds = 1
    #: Calls listed per page of a re-dispatch.
    items_per_page = 100

    class Media:
        css = {"all": ["taskops/admin.css", "taskops/redispatch.css"]}

    # --- permissions: read-only; re-dispatchers may follow what they start ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_view_permission(request, obj) or policy.may_redispatch(request.user)

    # --- the list ---

    @admin.display(description=gettext_lazy("when"), ordering="created_at")
    def when(self, obj: Redispatch) -> SafeString:
        return moment_html(obj.created_at)

    @admin.display(description=gettext_lazy("who"), ordering="user")
    def operator(self, obj: Redispatch) -> SafeString | str:
        """The column as the admin's checks see it; ``get_list_display`` binds it to the request."""
        return self.operator_html(obj, Linker(self.admin_site, None))

    def operator_html(self, obj: Redispatch, linker: Linker) -> SafeString | str:
        """By name to users who may view users, else by pk."""
        return linker.instance_link(obj.user).name_html() if obj.user is not None else "—"

    def get_list_display(self, request: HttpRequest) -> Any:
        linker = Linker(self.admin_site, request)

        @admin.display(description=gettext_lazy("who"), ordering="user")
        def operator(obj: Redispatch) -> SafeString | str:
            return self.operator_html(obj, linker)

        return [operator if name == "operator" else name for name in super().get_list_display(request)]

    @admin.display(description=gettext_lazy("task"), ordering="task_name")
    def task(self, obj: Redispatch) -> str:
        return obj.task_name or _("(their own tasks)")

    @admin.display(description=gettext_lazy("published / skipped / calls"))
    def counts(self, obj: Redispatch) -> str:
        return f"{obj.published} / {obj.skipped} / {obj.total}"

    @admin.display(description=gettext_lazy("outcome"), ordering="outcome")
    def outcome_badge(self, obj: Redispatch) -> SafeString:
        return outcome_badge(obj)

    # --- a re-dispatch's page: its progress ---

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        resume_path = path(
            "<path:object_id>/resume/", self.admin_site.admin_view(self.resume_view), name="{}_{}_resume".format(*info)
        )
        return [resume_path, *super().get_urls()]

    def get_redispatch(self, request: HttpRequest, object_id: str) -> Redispatch:
        redispatch: Redispatch | None = self.get_object(request, unquote(object_id))
        if redispatch is None:
            raise Http404(_("There is no re-dispatch “%(id)s”.") % {"id": object_id[:40]})
        return redispatch

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The re-dispatch's page; an htmx poll gets the ``progress`` partial, and stops once it settled.

        A POST (an edit) is refused: the audit is never changed, not even by a superuser."""
        self.check_view_permission(request)
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        redispatch = self.get_redispatch(request, object_id)
        templates = self.get_template_names(self.progress_template, "progress.html")
        polled = bool(getattr(request, "htmx", False))
        if polled:
            templates = [f"{name}#progress" for name in templates]
        context = self.get_progress_context(request, redispatch)
        response = self.render_page(request, templates, context, extra_context)
        if polled and context["progress"].settled:
            return HttpResponseStopPolling(response.render().content)
        return response

    def get_progress_context(self, request: HttpRequest, redispatch: Redispatch) -> dict[str, Any]:
        """How far it got, the summary, a page of its calls, whether the user may resume it."""
        linker = Linker(self.admin_site, request)
        page = items_page(redispatch, self.items_per_page, request.GET.get("p"))
        rows = self.item_rows(redispatch, list(page.object_list), linker)
        stalled = is_stalled(redispatch)
        progress = progress_of(redispatch, rows, stalled)
        may_resume = (redispatch.outcome == Redispatch.Outcome.FAILED or stalled) and self.may_resume(
            request, redispatch
        )
        return {
            "title": str(redispatch),
            "redispatch": redispatch,
            "progress": progress,
            "outcome_html": outcome_badge(redispatch),
            "operator_html": self.operator_html(redispatch, linker),
            "skipped_by_note": skipped_by_note(redispatch) if redispatch.skipped and progress.settled else {},
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "rows": rows,
            "kwargs_html": ArgumentPrinter(linker).render_stored(redispatch.plan.get("kwargs") or "{}"),
            "options": plan_summary(redispatch),
            "resume_url": self.url("resume", redispatch.pk) if may_resume else "",
            "stalled": stalled,
            "refresh_seconds": self.progress_refresh_seconds,
            "dispatches_url": self.dispatches_url(redispatch),
            "changelist_url": self.url("changelist"),
            "history_url": self.url("history", redispatch.pk),
        }

    def dispatches_url(self, redispatch: Redispatch) -> str:
        """The Dispatch changelist of what this re-dispatch published (``OperationFilter``), on this admin site."""
        changelist = reverse(f"{self.admin_site.name}:taskops_dispatch_changelist")
        return f"{changelist}?{OperationFilter.parameter_name}={redispatch.pk}"

    def may_resume(self, request: HttpRequest, redispatch: Redispatch) -> bool:
        """The user passes the service's checks for resuming it (so "Resume" is shown)."""
        try:
            check_resume(redispatch, request.user, Linker(self.admin_site, request).visibility.may_view)
        except Refused:
            return False
        return True

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resume a stopped or stalled re-dispatch (POST, the service's checks); it is logged as a change."""
        self.check_view_permission(request)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not policy.may_redispatch(request.user):
            raise PermissionDenied
        redispatch = self.get_redispatch(request, object_id)
        try:
            resumed = resume(redispatch, request.user, Linker(self.admin_site, request).visibility.may_view)
        except Refused as refused:
            messages.error(
                request,
                _("%(redispatch)s was not resumed: %(problems)s")
                % {"redispatch": redispatch, "problems": str(refused)},
            )
            return HttpResponseRedirect(self.url("change", redispatch.pk))
        if resumed:
            self.log_change(request, redispatch, _("Resumed."))
            messages.success(
                request,
                _("%(redispatch)s resumed: the rest is published in the background.") % {"redispatch": redispatch},
            )
        elif Redispatch.objects.filter(pk=redispatch.pk, outcome=Redispatch.Outcome.FAILED).exists():
            redispatch.refresh_from_db(fields=["error"])
            messages.error(
                request,
                _("%(redispatch)s could not be resumed: %(error)s.")
                % {"redispatch": redispatch, "error": redispatch.error},
            )
        else:
            messages.warning(
                request,
                _("%(redispatch)s is not stopped or stalled: nothing to resume.") % {"redispatch": redispatch},
            )
        return HttpResponseRedirect(self.url("change", redispatch.pk))
