"""The Dispatch changelist's side of ``DispatchAdmin``: its columns, its search, its parameters.

Columns that show other models' rows (the objects, the operator) are bound to
the request, once per request, because permissions decide what they show
(``visibility``, through ``Linker``). No query per row: rows come with their
refs (``DispatchChangeList``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from taskops.admin.changelist import DispatchChangeList, refs_cell
from taskops.admin.display import clipped, dispatch_drift, dotted_name, format_duration, moment_html, state_badge
from taskops.admin.links import Linker
from taskops.admin.params import CheckedChangelist
from taskops.admin.search import SearchTerm, filter_by, parse_search
from taskops.models import Dispatch

if TYPE_CHECKING:
    BaseAdmin = admin.ModelAdmin[Dispatch]
else:
    BaseAdmin = admin.ModelAdmin


class DispatchChangelistAdmin(CheckedChangelist, BaseAdmin):
    """The changelist part of ``DispatchAdmin`` (which adds permissions, the detail and its own views)."""

    #: Refs listed per changelist row before "+N more".
    refs_per_row = 3

    def linker(self, request: HttpRequest) -> Linker:
        """Object links for this request, cached on it (one per page, many rows)."""
        linker = getattr(request, "_taskops_linker", None)
        if linker is None:
            linker = Linker(self.admin_site, request)
            request._taskops_linker = linker  # type: ignore[attr-defined]
        return linker

    # --- changelist ---

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        """The changelist class: rows come with their refs (one query per page)."""
        return DispatchChangeList

    def parsed_search(self, request: HttpRequest, term: str) -> SearchTerm:
        """``term`` understood, once per request (the search and the objects column both ask)."""
        parsed: dict[str, SearchTerm] = request.__dict__.setdefault("_taskops_search", {})
        if term not in parsed:
            parsed[term] = parse_search(term, models=list(self.admin_site._registry))
        return parsed[term]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Dispatch], search_term: str
    ) -> tuple[QuerySet[Dispatch], bool]:
        """Task or group id, task name or object (``demo.question:42`` or a pk); see ``taskops.admin.search``."""
        search = self.parsed_search(request, search_term)
        if search.problem:
            messages.warning(request, search.problem, fail_silently=True)
        return filter_by(queryset, search), False

    @admin.display(description=_("task"), ordering="task_name")
    def task(self, obj: Dispatch) -> SafeString:
        """The column as the admin's checks see it; ``get_list_display`` binds it to the request."""
        return self.task_cell(obj, Linker(self.admin_site, None))

    def task_cell(self, obj: Dispatch, linker: Linker) -> SafeString:
        """Task name, short id, and the operator who dispatched it (by name to users who may view users)."""
        operator = self.operator_html(obj, linker)
        by = format_html(" · {}", operator) if operator else ""
        task = dotted_name(obj.task_name)
        return format_html('{}<br><span class="taskops-quiet">{}{}</span>', task, obj.task_id[:8], by)

    def operator_html(self, obj: Dispatch, linker: Linker) -> SafeString | str:
        """The user who dispatched it (operator dispatches): by name to users who may view users, else by pk."""
        user = obj.dispatched_by if obj.dispatched_by_id else None
        return linker.instance_link(user).name_html() if user is not None else ""

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: Dispatch) -> SafeString:
        retries = format_html(' <span class="taskops-quiet">\u00d7{}</span>', obj.attempts) if obj.retries else ""
        return format_html("{}{}", state_badge(obj.state), retries)

    @admin.display(description=_("enqueued"), ordering="enqueued_at")
    def enqueued(self, obj: Dispatch) -> SafeString:
        """To the second, in the current time zone: operators compare times, not dates."""
        return moment_html(obj.enqueued_at)

    @admin.display(description=_("lag"))
    def lag_display(self, obj: Dispatch) -> str:
        return format_duration(obj.lag)

    @admin.display(description=_("drift"))
    def drift_summary(self, obj: Dispatch) -> SafeString:
        changed = [name for ref in obj.refs.all() for name in (ref.changed_fields or [])]
        return dispatch_drift(obj, changed)

    @admin.display(description=_("objects"))
    def refs_display(self, obj: Dispatch) -> SafeString:
        """The column as the admin's checks see it; ``get_list_display`` binds it to the request."""
        return refs_cell(obj, Linker(self.admin_site, None), self.refs_per_row)

    def request_columns(self, request: HttpRequest) -> dict[str, Callable[[Dispatch], SafeString]]:
        """``task`` and ``refs_display`` bound to the request (permissions decide what they show), once per
        request: ``get_list_display`` and ``get_list_display_links`` must hand Django the same callables."""
        columns = getattr(request, "_taskops_columns", None)
        if columns is None:
            linker = self.linker(request)
            matches = self.parsed_search(request, request.GET.get("q", "")).objects

            @admin.display(description=_("task"), ordering="task_name")
            def task(obj: Dispatch) -> SafeString:
                return self.task_cell(obj, linker)

            @admin.display(description=_("objects"))
            def refs(obj: Dispatch) -> SafeString:
                return refs_cell(obj, linker, self.refs_per_row, matches.matches if matches else None)

            columns = {"task": task, "refs_display": refs}
            request._taskops_columns = columns  # type: ignore[attr-defined]
        return columns

    @admin.display(description=_("worker"), ordering="worker")
    def worker_display(self, obj: Dispatch) -> SafeString:
        """Hostnames run long: one line, cut by an ellipsis, whole in the title."""
        return clipped(obj.worker)

    def get_list_display(self, request: HttpRequest) -> Any:
        return self.bind_columns(request, super().get_list_display(request))

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> Any:
        links = super().get_list_display_links(request, list_display)
        return None if links is None else self.bind_columns(request, links)

    def bind_columns(self, request: HttpRequest, names: Any) -> list[Any]:
        """``names`` with the request-bound columns in place of theirs."""
        columns = self.request_columns(request)
        return [columns.get(name, name) if isinstance(name, str) else name for name in names]
