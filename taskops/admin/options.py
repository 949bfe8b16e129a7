"""Admin registrations of taskops: dispatches, their detail, per-object history, dashboard.

``DispatchAdmin`` is read-only (rows are written by the recorder), built to
stay fast on millions of rows: no full ``COUNT(*)`` (``EstimatedCountPaginator``),
filters with static choices, refs prefetched in one query per page.
Its custom views follow the admin's own pattern: prepended to
``get_urls()``, wrapped in ``admin_site.admin_view``, an explicit permission
check first, context from ``admin_site.each_context``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.options import ShowFacets
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from taskops.admin.dashboard import queries as dashboard_data
from taskops.admin.detail import detail_context, history_page, history_rows, history_target
from taskops.admin.display import Linker, drift_badge, format_duration, refs_prefetch, state_badge
from taskops.admin.filters import DriftFilter, LagBandFilter, QueueFilter, TaskNameFilter, search_dispatches
from taskops.admin.paginator import EstimatedCountPaginator
from taskops.models import Dispatch

#: Refs listed per changelist row before "+N more".
REFS_SHOWN = 3

if TYPE_CHECKING:
    BaseAdmin = admin.ModelAdmin[Dispatch]
else:
    BaseAdmin = admin.ModelAdmin


class DispatchChangeList(ChangeList):
    """The changelist's rows come with their refs: one extra query per page, whatever the rows and refs."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).prefetch_related(refs_prefetch())


@admin.register(Dispatch)
class DispatchAdmin(BaseAdmin):
    """Browse dispatches; see their arguments, refs, drift and result; no editing."""

    list_display = ["task", "state_badge", "enqueued", "lag_display", "drift_summary", "refs_display", "worker"]
    list_display_links = ["task"]
    list_filter = [
        TaskNameFilter,
        "state",
        DriftFilter,
        LagBandFilter,
        QueueFilter,
        "in_transaction",
        ("enqueued_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["dispatched_by"]
    list_per_page = 50
    ordering = ["-enqueued_at", "-pk"]
    search_fields = ["task_id"]  # shows the search box; get_search_results does the work
    search_help_text = _("A task id, a task name, or an object: demo.question:42 (or just its pk).")
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    fields = ["task_id", "task_name", "state"]

    #: Templates, easy to override per project.
    change_list_template = "admin/taskops/dispatch/change_list.html"
    change_form_template = "admin/taskops/dispatch/change_form.html"
    dashboard_template = "admin/taskops/dispatch/dashboard.html"
    object_history_template = "admin/taskops/dispatch/object_history.html"
    #: Seconds between the dashboard's refreshes.
    dashboard_refresh_seconds = 3
    #: Dispatches per page of an object's history.
    history_per_page = 50

    class Media:
        css = {"all": ["taskops/admin.css"]}

    # --- permissions: read-only; deleting needs the delete permission ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def check_view_permission(self, request: HttpRequest) -> None:
        """Every taskops view starts here: ``view_dispatch`` (or change) or 403."""
        if not self.has_view_permission(request):
            raise PermissionDenied

    # --- changelist ---

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DispatchChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Dispatch], search_term: str
    ) -> tuple[QuerySet[Dispatch], bool]:
        """Task id, task name or object (``demo.question:42`` or a pk); see ``search_dispatches``."""
        return search_dispatches(queryset, search_term, models=list(self.admin_site._registry)), False

    def linker(self, request: HttpRequest) -> Linker:
        """Object links for this request, cached on it (one per page, many rows)."""
        linker = getattr(request, "_taskops_linker", None)
        if linker is None:
            linker = Linker(self.admin_site, request)
            request._taskops_linker = linker  # type: ignore[attr-defined]
        return linker

    @admin.display(description=_("task"), ordering="task_name")
    def task(self, obj: Dispatch) -> SafeString:
        short_id = obj.task_id[:8]
        by = format_html(" · {}", obj.dispatched_by) if obj.dispatched_by_id else ""
        return format_html('{}<br><span class="taskops-quiet">{}{}</span>', obj.task_name, short_id, by)

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: Dispatch) -> SafeString:
        retries = format_html(' <span class="taskops-quiet">\u00d7{}</span>', obj.attempts) if obj.retries else ""
        return format_html("{}{}", state_badge(obj.state), retries)

    @admin.display(description=_("enqueued"), ordering="enqueued_at")
    def enqueued(self, obj: Dispatch) -> str:
        """To the second, in the current time zone: operators compare times, not dates."""
        return date_format(timezone.localtime(obj.enqueued_at), "Y-m-d H:i:s")

    @admin.display(description=_("lag"))
    def lag_display(self, obj: Dispatch) -> str:
        return format_duration(obj.lag)

    @admin.display(description=_("drift"))
    def drift_summary(self, obj: Dispatch) -> SafeString:
        changed = [name for ref in obj.refs.all() for name in (ref.changed_fields or [])]
        return drift_badge(obj.drift, likely_race=obj.likely_race, changed_fields=changed)

    def refs_display(self, obj: Dispatch, request: HttpRequest | None = None) -> SafeString:
        refs = list(obj.refs.all())
        linker = self.linker(request) if request is not None else Linker(self.admin_site, None)
        shown = format_html_join(mark_safe("<br>"), "{}", ((linker.ref_link(ref).html(),) for ref in refs[:REFS_SHOWN]))
        more = len(refs) - REFS_SHOWN
        if more > 0:
            return format_html('{}<br><span class="taskops-quiet">+{} more</span>', shown, more)
        return shown

    def get_list_display(self, request: HttpRequest) -> Any:
        """``refs`` needs the request (permissions decide which objects link): bind it here."""

        @admin.display(description=_("objects"))
        def refs(obj: Dispatch) -> SafeString:
            return self.refs_display(obj, request)

        return [refs if column == "refs_display" else column for column in super().get_list_display(request)]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"dashboard_url": self.url("dashboard"), **(extra_context or {})}
        return super().changelist_view(request, extra)

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
            context.update(detail_context(self.admin_site.name, self.linker(request), obj))
            context["dashboard_url"] = self.url("dashboard")
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- custom views ---

    def url(self, name: str, *args: Any) -> str:
        """The URL of one of this admin's views, on this admin site."""
        return reverse(f"{self.admin_site.name}:taskops_dispatch_{name}", args=args)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="{}_{}_dashboard".format(*info)),
            path(
                "object-history/<int:content_type_id>/<path:object_pk>/",
                wrap(self.object_history_view),
                name="{}_{}_object_history".format(*info),
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Live figures for a window; htmx polls re-render only the ``panel`` partial."""
        self.check_view_permission(request)
        request.current_app = self.admin_site.name
        window = dashboard_data.get_window(request.GET.get("window"))
        dashboard, sort = dashboard_data.collect(window, sort=request.GET.get("sort"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Task dashboard"),
            "opts": self.opts,
            "dashboard": dashboard,
            "sort": sort,
            "window_links": self.window_links(request, window.key),
            "sort_columns": self.sort_columns(request, sort),
            "refresh_seconds": self.dashboard_refresh_seconds,
            "changelist_url": self.url("changelist"),
            "linker": self.linker(request),
        }
        template = self.dashboard_template
        if getattr(request, "htmx", False):
            template = f"{template}#panel"
        return TemplateResponse(request, template, context)

    def window_links(self, request: HttpRequest, current: str) -> list[dict[str, Any]]:
        """The window chooser: one link per window, keeping the sort."""
        links = []
        for key, window in dashboard_data.WINDOWS.items():
            query = {"window": key, **({"sort": request.GET["sort"]} if request.GET.get("sort") else {})}
            links.append({"label": window.label, "url": "?" + urlencode(query), "current": key == current})
        return links

    def sort_columns(self, request: HttpRequest, sort: str) -> list[dict[str, Any]]:
        """Headers of the per-task table: label, the link that sorts by it, the current direction."""
        window = request.GET.get("window", dashboard_data.DEFAULT_WINDOW)
        columns = []
        for key, label in dashboard_data.COLUMN_LABELS.items():
            direction = "desc" if sort == f"-{key}" else "asc" if sort == key else ""
            next_sort = key if direction == "desc" else f"-{key}"
            url = "?" + urlencode({"window": window, "sort": next_sort})
            columns.append({"key": key, "label": label, "url": url, "direction": direction})
        return columns

    def object_history_view(self, request: HttpRequest, content_type_id: int, object_pk: str) -> HttpResponse:
        """Every dispatch that referenced one object, newest first."""
        self.check_view_permission(request)
        request.current_app = self.admin_site.name
        try:
            content_type = ContentType.objects.get_for_id(content_type_id)
        except ContentType.DoesNotExist as error:
            raise Http404(_("No such content type.")) from error
        object_pk = unquote(object_pk)
        page = history_page(request, content_type, object_pk, self.history_per_page)
        latest_repr = next((ref.object_repr for ref in page.object_list if ref.object_repr), "")
        target = history_target(self.linker(request), content_type, object_pk, latest_repr)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Task history: %(object)s") % {"object": target.link.label},
            "opts": self.opts,
            "target": target,
            "page": page,
            "rows": history_rows(self.admin_site.name, page.object_list),
            "paginator": page.paginator,
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "changelist_url": self.url("changelist"),
            "dashboard_url": self.url("dashboard"),
        }
        return TemplateResponse(request, self.object_history_template, context)
