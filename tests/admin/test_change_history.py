"""Django's "History" page of taskops' objects names a user only to those who may view users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.models import Redispatch
from tests.admin.alerting import make_alert, make_rule, staff
from tests.factories import make_dispatch

pytestmark = pytest.mark.django_db

#: Each taskops model with a history page: how to make one, and the permission that views it.
OBJECTS: dict[str, tuple[Callable[[], Model], str]] = {
    "dispatch": (lambda: make_dispatch(), "view_dispatch"),
    "redispatch": (
        lambda: Redispatch.objects.create(created_at=timezone.now(), reason="r", kind=Redispatch.Kind.REPLAY),
        "view_redispatch",
    ),
    "alertrule": (lambda: make_rule(), "view_alertrule"),
    "alert": (lambda: make_alert(make_rule()), "view_alert"),
}


def logged_change(obj: Model, user: User) -> None:
    LogEntry.objects.log_actions(user.pk, [obj], CHANGE, change_message="Acknowledged.", single_object=True)


def history_page(obj: Model) -> str:
    return reverse(f"admin:taskops_{obj._meta.model_name}_history", args=[obj.pk])


@pytest.mark.parametrize("model", OBJECTS)
@pytest.mark.parametrize(("who", "extra", "sees"), [("viewer", (), False), ("user-viewer", ("view_user",), True)])
def test_the_acting_user_is_named_only_to_users_who_may_view_users(
    client: Client, model: str, who: str, extra: tuple[str, ...], sees: bool
) -> None:
    make, permission = OBJECTS[model]
    obj = make()
    actor = User.objects.create_user("actor-secret-name", first_name="Ada", last_name="Secretsurname")
    logged_change(obj, actor)
    client.force_login(staff(who, permission, *extra))

    response = client.get(history_page(obj))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Acknowledged." in html  # the entry is there
    assert ("actor-secret-name" in html) == sees
    assert "Secretsurname" not in html
    assert (f"User #{actor.pk}" in html) == (not sees)
    assert (reverse("admin:auth_user_change", args=[actor.pk]) in html) == sees


def test_the_acting_users_name_needs_the_admins_own_view_permission(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``UserAdmin`` that refuses viewing hides the name even from a superuser: the admin decides."""
    obj: Any = make_dispatch()
    actor = User.objects.create_user("actor-secret-name")
    logged_change(obj, actor)
    monkeypatch.setattr(admin.site._registry[User], "has_view_permission", lambda request, obj=None: False)

    html = admin_client.get(history_page(obj)).content.decode()

    assert "Acknowledged." in html
    assert "actor-secret-name" not in html
    assert f"User #{actor.pk}" in html
