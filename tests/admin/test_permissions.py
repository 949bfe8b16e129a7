"""Every taskops view asks for ``view_dispatch`` (or change); nothing leaks without it; nothing is edited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from taskops.models import Dispatch
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def dispatch() -> Dispatch:
    return make_dispatch(Question.objects.create(title="Secret question", body="secret body"))


def history(dispatch: Dispatch) -> str:
    ref = dispatch.refs.get()
    return reverse("admin:taskops_dispatch_object_history", args=[ref.content_type_id, ref.object_pk])


#: Every taskops page: (name, URL for a dispatch, extra request headers).
PAGES: list[tuple[str, Callable[[Dispatch], str], dict[str, str]]] = [
    ("changelist", lambda d: reverse("admin:taskops_dispatch_changelist"), {}),
    ("changelist-search", lambda d: reverse("admin:taskops_dispatch_changelist") + "?q=testapp.question:1", {}),
    ("detail", lambda d: reverse("admin:taskops_dispatch_change", args=[d.pk]), {}),
    ("history", history, {}),
    ("dashboard", lambda d: reverse("admin:taskops_dispatch_dashboard"), {}),
    ("dashboard-htmx", lambda d: reverse("admin:taskops_dispatch_dashboard") + "?window=15m", HTMX),
]
IDS = [name for name, _url, _headers in PAGES]


def staff(*codenames: str) -> User:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.mark.parametrize(("name", "url", "headers"), PAGES, ids=IDS)
def test_anonymous_is_sent_to_the_login(
    client: Client, dispatch: Dispatch, name: str, url: Callable[[Dispatch], str], headers: dict[str, str]
) -> None:
    response = client.get(url(dispatch), headers=headers)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


@pytest.mark.parametrize(("name", "url", "headers"), PAGES, ids=IDS)
def test_staff_without_view_permission_gets_403(
    client: Client, dispatch: Dispatch, name: str, url: Callable[[Dispatch], str], headers: dict[str, str]
) -> None:
    client.force_login(staff("view_question", "change_question"))

    response = client.get(url(dispatch), headers=headers)

    assert response.status_code == 403
    assert b"Secret question" not in response.content


@pytest.mark.parametrize("codename", ["view_dispatch", "change_dispatch"])
@pytest.mark.parametrize(("name", "url", "headers"), PAGES, ids=IDS)
def test_view_or_change_permission_can_browse(
    client: Client,
    dispatch: Dispatch,
    codename: str,
    name: str,
    url: Callable[[Dispatch], str],
    headers: dict[str, str],
) -> None:
    client.force_login(staff(codename))

    response = client.get(url(dispatch), headers=headers)

    assert response.status_code == 200


def test_view_only_user_cannot_delete(client: Client, dispatch: Dispatch) -> None:
    client.force_login(staff("view_dispatch"))

    detail = client.get(reverse("admin:taskops_dispatch_change", args=[dispatch.pk])).content.decode()
    changelist = client.get(reverse("admin:taskops_dispatch_changelist")).content.decode()
    response = client.post(reverse("admin:taskops_dispatch_delete", args=[dispatch.pk]), {"post": "yes"})

    assert "deletelink" not in detail
    assert 'name="_selected_action"' not in changelist
    assert response.status_code == 403
    assert Dispatch.objects.filter(pk=dispatch.pk).exists()


def test_delete_permission_allows_deleting(client: Client, dispatch: Dispatch) -> None:
    client.force_login(staff("view_dispatch", "delete_dispatch"))

    detail = client.get(reverse("admin:taskops_dispatch_change", args=[dispatch.pk])).content.decode()
    response = client.post(reverse("admin:taskops_dispatch_delete", args=[dispatch.pk]), {"post": "yes"})

    assert "deletelink" in detail
    assert response.status_code == 302
    assert not Dispatch.objects.filter(pk=dispatch.pk).exists()


def test_ref_links_only_to_models_the_user_may_view(client: Client, dispatch: Dispatch) -> None:
    question = Question.objects.get()
    change_url = reverse("admin:testapp_question_change", args=[question.pk])
    client.force_login(staff("view_dispatch"))
    without = client.get(reverse("admin:taskops_dispatch_changelist")).content.decode()
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="view_question"))

    with_permission = client.get(reverse("admin:taskops_dispatch_changelist")).content.decode()

    assert f'href="{change_url}"' not in without
    assert f'href="{change_url}"' in with_permission
    ct = ContentType.objects.get_for_model(Question)
    assert reverse("admin:taskops_dispatch_object_history", args=[ct.pk, question.pk]) in without


def test_dispatches_cannot_be_added_or_changed(admin_client: Client, dispatch: Dispatch) -> None:
    assert admin_client.get(reverse("admin:taskops_dispatch_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:taskops_dispatch_change", args=[dispatch.pk]), {"task_name": "evil", "state": "SUCCESS"}
    )
    dispatch.refresh_from_db()
    assert response.status_code == 403
    assert dispatch.task_name == "tests.testapp.tasks.moderate_answer"


def test_superuser_can_delete_a_dispatch(admin_client: Client, dispatch: Dispatch) -> None:
    response = admin_client.post(reverse("admin:taskops_dispatch_delete", args=[dispatch.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Dispatch.objects.filter(pk=dispatch.pk).exists()
