"""A URLconf with a second admin site whose ``DispatchAdmin`` is a project's subclass."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from django.urls import path

from taskops.admin import DispatchAdmin
from taskops.models import Dispatch
from tests.testapp.models import Question


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


site = admin.AdminSite(name="project_admin")
site.register(Dispatch, ProjectDispatchAdmin)
site.register(Question)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("project-admin/", site.urls),
]
