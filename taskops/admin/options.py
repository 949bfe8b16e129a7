"""``DispatchAdmin``: the Dispatch changelist, its detail page, and its own views.

Read-only (rows are written by the recorder) and built to stay fast on
millions of rows: no full ``COUNT(*)`` (``EstimatedCountPaginator``), filters
with static choices, refs prefetched in one query per page.

Its pages follow the admin's own pattern (``pages.AdminPages``), so a project
overrides them the way it overrides Django's: custom views are prepended to ``get_urls()``,
wrapped in ``admin_site.admin_view``, and start with a permission check;
their context is ``admin_site.each_context``, then an overridable
``get_*_context`` method, then ``extra_context`` (merged last); their
templates are a class attribute or, when it is None, the first found of
``admin/<app>/<model>/<name>``, ``admin/<app>/<name>``, ``admin/<name>``.

Every view refuses a URL whose parameters no text column can hold with a
400 before any query (``params``), and what it shows of other models' rows
follows one policy (``visibility``, through ``Linker``).

This module adds no query of its own: each page costs what the modules it
draws on say (changelist, detail, history, dashboard).
"""

from __future__ import annotations

from typing import Any

import attrs
from django.contrib import admin
from django.contrib.admin.options import ShowFacets
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import BadRequest
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from taskops.admin import detail, history
from taskops.admin.arguments import ArgumentPrinter, parse_json, pretty_json
from taskops.admin.change_history import VisibleChangeHistory
from taskops.admin.columns import DispatchChangelistAdmin
from taskops.admin.dashboard import alerts, queries, table
from taskops.admin.display import format_duration
from taskops.admin.filters import DriftFilter, LagBandFilter, QueueFilter, TaskNameFilter
from taskops.admin.objects import content_type_for_id, python_pk
from taskops.admin.paginator import EstimatedCountPaginator
from taskops.admin.params import reject_unstorable
from taskops.admin.redispatch import OperationFilter, RedispatchViews
from taskops.models import Dispatch


@admin.register(Dispatch)
class DispatchAdmin(VisibleChangeHistory, RedispatchViews, DispatchChangelistAdmin):
    """Browse dispatches; see their arguments, refs, drift and result; no editing."""

    list_display = ["task", "state_badge", "enqueued", "lag_display", "drift_summary", "refs_display", "worker_display"]
    list_display_links = ["task"]
    list_filter = [
        TaskNameFilter,
        "state",
        DriftFilter,
        LagBandFilter,
        QueueFilter,
        "in_transaction",
        ("enqueued_at", admin.DateFieldListFilter),
        OperationFilter,
    ]
    list_select_related = ["dispatched_by"]
    list_per_page = 50
    ordering = ["-enqueued_at", "-pk"]
    search_fields = ["task_id"]  # shows the search box; get_search_results does the work
    search_help_text = _(
        "A task or group id (or its first 8 characters), a task name, or an object: demo.question:42, "
        'app.model:"a pk with spaces", or just a pk.'
    )
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    fields = ["task_id", "task_name", "state"]

    #: The dashboard's template; None: the first found of ``admin/taskops/dispatch/dashboard.html``,
    #: ``admin/taskops/dashboard.html``, ``admin/dashboard.html`` (``get_template_names``).
    dashboard_template: str | None = None
    #: The per-object task history's template; None: the first found of
    #: ``admin/taskops/dispatch/object_task_history.html``, ``admin/taskops/object_task_history.html``,
    #: ``admin/object_task_history.html``. (Django's ``object_history_template`` stays Django's.)
    object_task_history_template: str | None = None
    #: Seconds between the dashboard's refreshes.
    dashboard_refresh_seconds = 3
    #: Dispatches per page of an object's task history.
    history_per_page = 50

    class Media:
        css = {"all": ["taskops/admin.css"]}

    # --- permissions: read-only; deleting needs the delete permission ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Dispatch | None:
        """Django's, but an id no dispatch can have (``abc``, NUL, out of range) is a 400 after the permission
        check, where Django would redirect as for a deleted row (detail, history and delete pages)."""
        if from_field is None and python_pk(Dispatch, object_id) is None:
            self.check_view_permission(request)
            raise BadRequest(_("“%(id)s” is not a dispatch id.") % {"id": object_id[:100]})
        return super().get_object(request, object_id, from_field)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {"dashboard_url": self.url("dashboard"), **(extra_context or {})})

    # --- detail (the read-only change view) ---

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Dispatch | None = None,
    ) -> HttpResponse:
        if obj is not None:
            # Django has merged the view's extra_context into context already,
            # and it must win: the detail's keys only fill in what is missing.
            for key, value in self.get_detail_context(request, obj).items():
                context.setdefault(key, value)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_detail_context(self, request: HttpRequest, obj: Dispatch) -> dict[str, Any]:
        """What the detail page shows beyond the row: arguments, refs now, timeline, result, workflow."""
        linker = self.linker(request)
        refs = detail.refs_of(obj)
        printer = ArgumentPrinter(linker, refs)
        result, result_hidden = detail.task_result(obj, linker.visibility)
        return {
            "dispatch": obj,
            "dispatched_by_html": self.operator_html(obj, linker),
            "operation_html": linker.instance_link(obj.operation).name_html() if obj.operation is not None else "",
            "args_html": printer.render_stored(obj.args),
            "kwargs_html": printer.render_stored(obj.kwargs),
            "ref_rows": detail.ref_rows(refs, linker),
            "timeline": detail.timeline(obj),
            "lag_text": format_duration(obj.lag),
            "runtime_text": format_duration(obj.runtime),
            "task_result": result,
            "task_result_hidden": result_hidden,
            "task_result_text": pretty_json(parse_json(result.result)) if result and result.result else "",
            "task_result_url": linker.model_change_url(type(result), result.pk) if result else None,
            "related": detail.related(obj),
            "dashboard_url": self.url("dashboard"),
        }

    # --- custom views ---

    def get_urls(self) -> list[URLPattern]:
        """The dashboard and the per-object task history, before the admin's own URLs."""
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="{}_{}_dashboard".format(*info)),
            path(
                # str, not int: "abc" is a 400 here, not a redirect to a change page that does not exist.
                "object-history/<str:content_type_id>/<path:object_pk>/",
                wrap(self.object_task_history_view),
                name="{}_{}_object_history".format(*info),
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Live figures for a window; an htmx poll re-renders only the ``panel`` partial."""
        self.check_view_permission(request)
        templates = self.get_template_names(self.dashboard_template, "dashboard.html")
        if getattr(request, "htmx", False):
            templates = [f"{name}#panel" for name in templates]
        return self.render_page(request, templates, self.get_dashboard_context(request), extra_context)

    def get_dashboard_context(self, request: HttpRequest) -> dict[str, Any]:
        """The figures for the requested window, the per-task table in the requested order, their links."""
        window = queries.get_window(request.GET.get("window"))
        linker = self.linker(request)
        dashboard = queries.collect(window)
        # Pending work is judged against the rows as they are now: only on the rows this user may view.
        pending = attrs.evolve(
            dashboard.pending, verdicts=linker.visibility.pending_verdicts(dashboard.pending.verdicts)
        )
        dashboard = attrs.evolve(dashboard, pending=pending)
        tasks, sort = table.sort_rows(dashboard.tasks, request.GET.get("sort"))
        return {
            "title": _("Task dashboard"),
            "dashboard": dashboard,
            "tasks": tasks,
            "sort": sort,
            "window_links": table.window_links(request.GET, window.key),
            "sort_columns": table.sort_columns(request.GET, sort),
            "refresh_seconds": self.dashboard_refresh_seconds,
            "changelist_url": self.url("changelist"),
            "linker": linker,
            "open_alerts": alerts.open_alerts(linker),
        }

    def object_task_history_view(
        self,
        request: HttpRequest,
        content_type_id: int | str,
        object_pk: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Every dispatch that referenced one object, newest first; a content type that does not exist is a 400."""
        self.check_view_permission(request)
        object_pk = unquote(object_pk)
        reject_unstorable([object_pk])
        content_type = content_type_for_id(str(content_type_id))
        if content_type is None:
            raise BadRequest(_("There is no content type “%(id)s”.") % {"id": str(content_type_id)[:100]})
        templates = self.get_template_names(self.object_task_history_template, "object_task_history.html")
        context = self.get_object_task_history_context(request, content_type, object_pk)
        return self.render_page(request, templates, context, extra_context)

    def get_object_task_history_context(
        self, request: HttpRequest, content_type: ContentType, object_pk: str
    ) -> dict[str, Any]:
        """The object, and one page of the dispatches that referenced it with their drift."""
        linker = self.linker(request)
        page = history.history_page(content_type, object_pk, self.history_per_page, request.GET.get("p"))
        target = history.history_target(linker, content_type, object_pk, page.object_list)
        return {
            "title": _("Task history: %(object)s") % {"object": target.link.label},
            "target": target,
            "page": page,
            "rows": history.history_rows(linker, page.object_list, content_type),
            "paginator": page.paginator,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "changelist_url": self.url("changelist"),
            "dashboard_url": self.url("dashboard"),
        }
