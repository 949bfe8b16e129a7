"""Whether a user may view a model is the target ``ModelAdmin``'s answer, in the re-dispatch pages as elsewhere.

The project site of ``tests.admin.urls`` registers a ``BookAdmin`` whose
``has_view_permission`` is always False: a user with ``testapp.view_book``
still may not re-dispatch for books there, through the form or the replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from taskops.admin.redispatch import tickets
from taskops.models import Dispatch, Redispatch
from taskops.redispatch import Refused, for_objects
from taskops.redispatch.publish import save
from tests.admin.redispatch.conftest import IDLE
from tests.factories import make_dispatch
from tests.testapp.models import Book
from tests.testapp.tasks import touch_book

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_client(client: Client, role: Callable[[str], User], settings: Any) -> Client:
    settings.ROOT_URLCONF = "tests.admin.urls"
    client.force_login(role("operator"))  # has testapp.view_book
    return client


def run_for_selection(client: Client, site: str) -> Any:
    user = client.session["_auth_user_id"]
    token = tickets.keep_selection(User.objects.get(pk=user), Book.objects.all())
    data = {"task": touch_book.name, "selection": token, "queue": IDLE, "reason": "the import missed them"}
    return client.post(reverse(f"{site}:taskops_dispatch_redispatch"), data)


def test_the_form_refuses_what_the_model_admin_hides(project_client: Client, published: list[Any]) -> None:
    Book.objects.create(title="b")

    hidden = run_for_selection(project_client, "project_admin")
    shown = run_for_selection(project_client, "admin")  # Book has no ModelAdmin there: the permission decides

    assert "You may not view books." in hidden.content.decode()
    assert hidden.context["preview"] is None
    assert shown.context["preview"] is not None
    assert "You may not view books." not in shown.content.decode()
    assert published == []
    assert not Redispatch.objects.exists()


def test_the_replay_refuses_what_the_model_admin_hides(project_client: Client, published: list[Any]) -> None:
    source = make_dispatch(Book.objects.create(title="b"), task_name=touch_book.name)
    data = {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: [source.pk]}

    hidden = project_client.post(reverse("project_admin:taskops_dispatch_changelist"), data)
    shown = project_client.post(reverse("admin:taskops_dispatch_changelist"), data)

    assert hidden.context["problems"] == ["You may not view books."]
    assert shown.context["problems"] == []
    assert Dispatch.objects.count() == 1
    assert published == []


def test_outside_the_admin_the_service_asks_the_model_permission(
    make_user: Callable[..., User], published: list[Any]
) -> None:
    book = Book.objects.create(title="b")
    operator = make_user("op", "taskops.redispatch_dispatch", "testapp.view_book")
    call = {"user": operator, "task_name": touch_book.name, "model_label": "testapp.book", "pks": [book.pk]}

    assert for_objects(**call, reason="r").total == 1
    with pytest.raises(Refused, match="You may not view books"):
        for_objects(**call, reason="r", may_view=lambda model: model is not Book)


def test_a_resume_refuses_what_the_model_admin_hides(project_client: Client, published: list[Any]) -> None:
    operator = User.objects.get(pk=project_client.session["_auth_user_id"])
    book = Book.objects.create(title="b")
    draft = for_objects(user=operator, task_name=touch_book.name, model_label="testapp.book", pks=[book.pk], reason="r")
    stopped = save(draft)
    Redispatch.objects.filter(pk=stopped.pk).update(outcome=Redispatch.Outcome.FAILED)

    hidden = project_client.post(reverse("project_admin:taskops_redispatch_resume", args=[stopped.pk]), follow=True)

    assert "You may not view books." in hidden.content.decode()
    assert Redispatch.objects.get(pk=stopped.pk).outcome == Redispatch.Outcome.FAILED
    assert published == []
