"""The audit is never edited: ``Redispatch`` has no add, change, delete or "delete selected", even for a superuser."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.models import Redispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def redispatch(admin_user: Any) -> Redispatch:
    return Redispatch.objects.create(
        user=admin_user,
        created_at=timezone.now(),
        reason="the workers were down",
        kind=Redispatch.Kind.REPLAY,
        total=2,
        published=2,
    )


def as_it_was(redispatch: Redispatch) -> tuple[Any, ...]:
    row = Redispatch.objects.get(pk=redispatch.pk)
    return (row.reason, row.kind, row.total, row.published, row.outcome, row.user_id)


def test_no_add(admin_client: Client) -> None:
    url = reverse("admin:taskops_redispatch_add")

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"reason": "made up", "kind": "objects", "total": 1}).status_code == 403
    assert not Redispatch.objects.exists()


def test_no_change(admin_client: Client, redispatch: Redispatch) -> None:
    before = as_it_was(redispatch)
    url = reverse("admin:taskops_redispatch_change", args=[redispatch.pk])

    response = admin_client.post(url, {"reason": "rewritten", "total": 0, "published": 0, "outcome": "failed"})

    assert response.status_code == 403
    assert as_it_was(redispatch) == before
    assert admin_client.get(url).status_code == 200  # the page itself: its progress, read-only


def test_no_delete(admin_client: Client, redispatch: Redispatch) -> None:
    url = reverse("admin:taskops_redispatch_delete", args=[redispatch.pk])

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Redispatch.objects.filter(pk=redispatch.pk).exists()


def test_no_delete_selected(admin_client: Client, redispatch: Redispatch) -> None:
    changelist = reverse("admin:taskops_redispatch_changelist")
    listed = admin_client.get(changelist)
    actions = listed.context["cl"].model_admin.get_actions(listed.wsgi_request)

    response = admin_client.post(
        changelist,
        {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [redispatch.pk], "post": "yes", "index": 0},
    )

    assert "delete_selected" not in actions
    assert response.status_code in (200, 302)
    assert Redispatch.objects.filter(pk=redispatch.pk).exists()
    assert not LogEntry.objects.filter(object_id=str(redispatch.pk)).exists()
