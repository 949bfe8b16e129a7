"""A URLconf with a second admin site whose ``DispatchAdmin`` and ``RedispatchAdmin`` are a project's subclasses.

Its ``BookAdmin`` lets nobody view books, whatever their permissions: what
taskops shows and accepts of books there follows it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from django.urls import path

from taskops.admin import DispatchAdmin
from taskops.admin.redispatch import RedispatchAdmin
from taskops.admin.redispatch.form import RedispatchForm
from taskops.admin.redispatch.views import Preview
from taskops.models import Dispatch, Redispatch
from tests.testapp.models import Book, Question


class ProjectDispatchAdmin(DispatchAdmin):
    """What a project might change: a template, and what the pages say."""

    dashboard_template = "project/dashboard.html"

    def get_dashboard_context(self, request: HttpRequest) -> dict[str, Any]:
        return {**super().get_dashboard_context(request), "title": "Our tasks", "on_call": "Ada"}

    def get_object_task_history_context(
        self, request: HttpRequest, content_type: ContentType, object_pk: str
    ) -> dict[str, Any]:
        context = super().get_object_task_history_context(request, content_type, object_pk)
        return {**context, "title": f"What ran on {context['target'].link.label}"}

    def get_detail_context(self, request: HttpRequest, obj: Dispatch) -> dict[str, Any]:
        return {**super().get_detail_context(request, obj), "lag_text": "lag withheld"}

    def get_redispatch_context(
        self, request: HttpRequest, form: RedispatchForm, preview: Preview | None
    ) -> dict[str, Any]:
        return {**super().get_redispatch_context(request, form, preview), "title": "Run it again, carefully"}

    def get_replay_confirmation_context(self, request: HttpRequest, queryset: Any, form: Any) -> dict[str, Any]:
        return {**super().get_replay_confirmation_context(request, queryset, form), "title": "Replay, carefully"}


class ProjectRedispatchAdmin(RedispatchAdmin):
    def get_progress_context(self, request: HttpRequest, redispatch: Redispatch) -> dict[str, Any]:
        return {**super().get_progress_context(request, redispatch), "title": f"Operation {redispatch.pk}"}

    def dispatches_url(self, redispatch: Redispatch) -> str:
        return f"/ops/{redispatch.pk}/dispatches/"


class BookAdmin(admin.ModelAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


site = admin.AdminSite(name="project_admin")
site.register(Dispatch, ProjectDispatchAdmin)
site.register(Redispatch, ProjectRedispatchAdmin)
site.register(Question)
site.register(Book, BookAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("project-admin/", site.urls),
]
