"""DispatchAdmin's override points: templates, context methods, ``extra_context``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from taskops.admin import DispatchAdmin
from taskops.models import Dispatch
from tests.admin.helpers import history_url
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_templates(tmp_path: Path, settings: Any) -> Path:
    """A project template folder, searched before the apps' templates."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    return tmp_path


def context_of(response: HttpResponse) -> dict[str, Any]:
    """The context a view handed its template (before rendering)."""
    assert isinstance(response, TemplateResponse)
    assert response.context_data is not None
    return dict(response.context_data)


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


@pytest.fixture
def model_admin() -> DispatchAdmin:
    model_admin = admin.site.get_model_admin(Dispatch)
    assert isinstance(model_admin, DispatchAdmin)
    return model_admin


@pytest.fixture
def superuser_get(admin_user: User) -> Any:
    """A GET request by a superuser, for calling a view method directly."""

    def get(path: str, **params: str) -> Any:
        request = RequestFactory().get(path, params)
        request.user = admin_user
        return request

    return get


def test_templates_fall_back_from_model_to_app_to_admin(model_admin: DispatchAdmin) -> None:
    assert model_admin.get_template_names(None, "dashboard.html") == [
        "admin/taskops/dispatch/dashboard.html",
        "admin/taskops/dashboard.html",
        "admin/dashboard.html",
    ]
    assert model_admin.get_template_names("ours.html", "dashboard.html") == ["ours.html"]


def test_a_project_template_replaces_the_task_history_page(
    admin_client: Client, question: Question, project_templates: Path
) -> None:
    make_dispatch(question)
    write(
        project_templates,
        "admin/taskops/dispatch/object_task_history.html",
        "Our page for {{ target.link.label }}: {{ rows|length }} dispatch",
    )

    html = admin_client.get(history_url(question)).content.decode()

    assert html == f"Our page for Question #{question.pk}: 1 dispatch"


# --- a subclass on another admin site (tests/admin/urls.py) -------------------


@pytest.fixture
def project_site(settings: Any, project_templates: Path) -> Path:
    settings.ROOT_URLCONF = "tests.admin.urls"
    write(project_templates, "project/dashboard.html", "{{ title }}; on call: {{ on_call }}; {{ tasks|length }} task")
    return project_templates


def test_subclass_template_attribute_and_dashboard_context(admin_client: Client, project_site: Path) -> None:
    make_dispatch(Question.objects.create(title="q"))

    response = admin_client.get(reverse("project_admin:taskops_dispatch_dashboard"))

    assert response.content.decode() == "Our tasks; on call: Ada; 1 task"


def test_subclass_task_history_and_detail_context(admin_client: Client, question: Question, project_site: Path) -> None:
    dispatch = make_dispatch(question)
    content_type = ContentType.objects.get_for_model(question)

    history = admin_client.get(
        reverse("project_admin:taskops_dispatch_object_history", args=[content_type.pk, question.pk])
    )
    detail = admin_client.get(reverse("project_admin:taskops_dispatch_change", args=[dispatch.pk]))

    assert f"<title>What ran on Question #{question.pk}" in history.content.decode()
    assert reverse("project_admin:taskops_dispatch_change", args=[dispatch.pk]) in history.content.decode()
    assert "lag withheld" in detail.content.decode()
    assert admin_client.get(history_url(question)).status_code == 200  # the default site is untouched


# --- extra_context reaches every view, merged last ----------------------------


def test_extra_context_reaches_the_dashboard(model_admin: DispatchAdmin, superuser_get: Any) -> None:
    request = superuser_get(reverse("admin:taskops_dispatch_dashboard"))

    response = model_admin.dashboard_view(request, extra_context={"title": "Ours", "marker": 1})

    context = context_of(response)

    assert context["marker"] == 1
    assert context["title"] == "Ours"
    assert "dashboard" in context


def test_extra_context_reaches_the_task_history(
    model_admin: DispatchAdmin, superuser_get: Any, question: Question
) -> None:
    make_dispatch(question)
    content_type = ContentType.objects.get_for_model(question)
    request = superuser_get(history_url(question))

    response = model_admin.object_task_history_view(
        request, content_type.pk, str(question.pk), extra_context={"title": "Ours", "marker": 1}
    )

    context = context_of(response)

    assert context["marker"] == 1
    assert context["title"] == "Ours"
    assert len(context["rows"]) == 1


def test_extra_context_reaches_the_detail(model_admin: DispatchAdmin, superuser_get: Any, question: Question) -> None:
    dispatch = make_dispatch(question)
    request = superuser_get(reverse("admin:taskops_dispatch_change", args=[dispatch.pk]))

    response = model_admin.change_view(request, str(dispatch.pk), extra_context={"lag_text": "Ours", "marker": 1})

    context = context_of(response)

    assert context["marker"] == 1
    assert context["lag_text"] == "Ours"
    assert context["dispatch"] == dispatch


def test_extra_context_reaches_the_changelist(model_admin: DispatchAdmin, superuser_get: Any) -> None:
    request = superuser_get(reverse("admin:taskops_dispatch_changelist"))

    response = model_admin.changelist_view(request, extra_context={"dashboard_url": "/ours/", "marker": 1})

    context = context_of(response)

    assert context["marker"] == 1
    assert context["dashboard_url"] == "/ours/"
