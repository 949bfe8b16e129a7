"""An object's task history, and Django's own History page of a dispatch."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.admin import DispatchAdmin
from taskops.models import Drift
from tests.admin.helpers import change_url, history_url, result_task_ids
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db


def test_object_history_lists_dispatches_newest_first_paginated(
    admin_client: Client, question: Question, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DispatchAdmin, "history_per_page", 2)
    now = timezone.now()
    made = [make_dispatch(question, enqueued_at=now - dt.timedelta(minutes=m)) for m in (5, 3, 1)]
    make_dispatch(Question.objects.create(title="unrelated"))

    first = admin_client.get(history_url(question)).content.decode()
    second = admin_client.get(history_url(question), {"p": 2}).content.decode()

    assert result_task_ids(first) == [made[2].task_id[:8], made[1].task_id[:8]]
    assert result_task_ids(second) == [made[0].task_id[:8]]
    assert "3 dispatches" in first
    assert f'<a href="{change_url(question)}">Question #{question.pk}</a>' in first


def test_object_history_of_a_deleted_object(admin_client: Client) -> None:
    gone = Question.objects.create(title="Deleted meanwhile")
    make_dispatch(gone, drift=Drift.MISSING)
    url = history_url(gone)
    gone.delete()

    html = admin_client.get(url).content.decode()

    assert "no longer exists" in html
    assert "Deleted meanwhile" in html  # the repr the dispatch recorded


def test_object_history_unknown_content_type_is_400(admin_client: Client) -> None:
    url = reverse("admin:taskops_dispatch_object_history", args=[999_999, "1"])
    assert admin_client.get(url).status_code == 400


def test_history_queries_are_bounded(
    admin_client: Client, question: Question, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        make_dispatch(question)
    admin_client.get(history_url(question))

    with django_assert_max_num_queries(6):
        admin_client.get(history_url(question))


def test_detail_history_button_opens_djangos_history_page(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)
    django_history = reverse("admin:taskops_dispatch_history", args=[dispatch.pk])

    detail = admin_client.get(change_url(dispatch)).content.decode()
    response = admin_client.get(django_history)

    assert re.search(rf'href="{re.escape(django_history)}"[^>]* class="historylink"', detail)
    assert response.status_code == 200
    # Django's page, through taskops' template (its users as visibility allows), which extends Django's.
    assert [t.name for t in response.templates[:2]] == [
        "admin/taskops/object_history.html",
        "admin/object_history.html",
    ]
    assert 'id="change-history"' in response.content.decode()
    assert "taskops-history-row" not in response.content.decode()


def test_task_history_of_a_dispatchs_object_is_its_own_page(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)

    response = admin_client.get(history_url(question))

    assert response.status_code == 200
    assert response.templates[0].name == "admin/taskops/dispatch/object_task_history.html"
    assert result_task_ids(response.content.decode()) == [dispatch.task_id[:8]]
    assert DispatchAdmin.object_history_template is None  # Django's attribute, left to Django's page
