"""What taskops adds to other admin pages: the Task history tool, the dashboard link."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from tests.admin.helpers import change_url, history_url
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db


def test_every_change_form_links_to_its_task_history(admin_client: Client, question: Question) -> None:
    html = admin_client.get(change_url(question)).content.decode()

    assert f'<a href="{history_url(question)}" class="taskops-historylink">Task history</a>' in html


def test_dispatch_change_form_has_no_task_history_tool(admin_client: Client, question: Question) -> None:
    dispatch = make_dispatch(question)
    assert "taskops-historylink" not in admin_client.get(change_url(dispatch)).content.decode()


def test_admin_index_links_to_the_dashboard(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("admin:taskops_dispatch_dashboard")}"' in html
    app_html = admin_client.get(reverse("admin:app_list", args=["testapp"])).content.decode()
    assert "taskops-index" not in app_html


def test_staff_without_permission_sees_no_taskops_links(client: Client, question: Question) -> None:
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_question", "change_question"]))
    client.force_login(user)

    assert "taskops-historylink" not in client.get(change_url(question)).content.decode()
    assert "taskops-dashboardlink" not in client.get(reverse("admin:index")).content.decode()
