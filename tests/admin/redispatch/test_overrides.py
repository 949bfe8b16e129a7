"""The re-dispatch pages' override points, in Django's manner: ``extra_context``, ``get_*_context``, site-aware methods.

The project site of ``tests.admin.urls`` serves subclasses of
``DispatchAdmin`` and ``RedispatchAdmin`` that override them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.template.response import TemplateResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from taskops.admin import DispatchAdmin
from taskops.admin.redispatch import RedispatchAdmin
from taskops.models import Dispatch, Redispatch, RedispatchItem
from tests.factories import make_dispatch
from tests.testapp.tasks import touch_book

pytestmark = pytest.mark.django_db


def superuser_get(user: User, path: str) -> Any:
    request = RequestFactory().get(path)
    request.user = user
    return request


def context_of(response: Any) -> dict[str, Any]:
    assert isinstance(response, TemplateResponse)
    assert response.context_data is not None
    return dict(response.context_data)


@pytest.fixture
def replayed(admin_user: User) -> Redispatch:
    """A replay of one dispatch, published."""
    source = make_dispatch(task_name=touch_book.name, args=[])
    redispatch = Redispatch.objects.create(
        user=admin_user, created_at=timezone.now(), reason="r", kind=Redispatch.Kind.REPLAY, total=1, published=1
    )
    RedispatchItem.objects.create(
        redispatch=redispatch, position=0, target=str(source.pk), task_id="t-0", state=RedispatchItem.State.PUBLISHED
    )
    return redispatch


def test_extra_context_reaches_the_form(admin_user: User) -> None:
    model_admin = admin.site.get_model_admin(Dispatch)
    assert isinstance(model_admin, DispatchAdmin)
    request = superuser_get(admin_user, reverse("admin:taskops_dispatch_redispatch"))

    context = context_of(model_admin.redispatch_view(request, extra_context={"title": "Ours", "marker": 1}))

    assert (context["title"], context["marker"]) == ("Ours", 1)
    assert "form" in context


def test_extra_context_reaches_a_redispatchs_page(admin_user: User, replayed: Redispatch) -> None:
    model_admin = admin.site.get_model_admin(Redispatch)
    assert isinstance(model_admin, RedispatchAdmin)
    request = superuser_get(admin_user, reverse("admin:taskops_redispatch_change", args=[replayed.pk]))

    response = model_admin.change_view(request, str(replayed.pk), extra_context={"title": "Ours", "marker": 1})

    context = context_of(response)
    assert (context["title"], context["marker"]) == ("Ours", 1)
    assert context["redispatch"] == replayed


@pytest.fixture
def project_client(admin_client: Client, settings: Any) -> Client:
    settings.ROOT_URLCONF = "tests.admin.urls"
    return admin_client


def test_a_subclass_changes_the_form_and_links_its_own_audit(project_client: Client) -> None:
    html = project_client.get(reverse("project_admin:taskops_dispatch_redispatch")).content.decode()

    assert "<title>Run it again, carefully" in html
    assert 'href="/project-admin/taskops/redispatch/"' in html  # the audit on its own site


def test_a_subclass_changes_the_replay_confirmation(project_client: Client) -> None:
    source = make_dispatch(task_name=touch_book.name, args=[])

    response = project_client.post(
        reverse("project_admin:taskops_dispatch_changelist"),
        {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: [source.pk]},
    )

    assert "<title>Replay, carefully" in response.content.decode()


def test_a_subclass_changes_a_redispatchs_page(project_client: Client, replayed: Redispatch) -> None:
    html = project_client.get(reverse("project_admin:taskops_redispatch_change", args=[replayed.pk])).content.decode()
    default = project_client.get(reverse("admin:taskops_redispatch_change", args=[replayed.pk])).content.decode()

    assert f"<title>Operation {replayed.pk}" in html
    assert f'href="/ops/{replayed.pk}/dispatches/"' in html  # its dispatches_url
    source = RedispatchItem.objects.get(redispatch=replayed).target
    assert f'href="/project-admin/taskops/dispatch/{source}/change/"' in html  # the source, on its own site
    assert f'href="/admin/taskops/dispatch/?operation={replayed.pk}"' in default
