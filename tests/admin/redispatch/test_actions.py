"""“Run a task for the selected objects” on every model's changelist: the selection kept on the server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from taskops import recording
from taskops.admin.redispatch import RUN_TASK_ACTION, WithoutRunTask
from taskops.models import Dispatch, Redispatch, RedispatchTicket
from tests.admin.redispatch.conftest import FORM, IDLE, QUESTIONS, review_data
from tests.testapp.models import Question, Tag
from tests.testapp.tasks import review_question

pytestmark = pytest.mark.django_db


def run_task(client: Client, url: str, selected: list[Any], **more: Any) -> Any:
    data = {"action": RUN_TASK_ACTION, helpers.ACTION_CHECKBOX_NAME: selected, "index": "0", **more}
    return client.post(url, data)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def test_every_changelist_offers_it_but_taskops_own(operator_client: Client, role: Any) -> None:
    request = RequestFactory().get("/")
    request.user = role("superuser")

    offered = {
        model._meta.label_lower: RUN_TASK_ACTION in ma.get_actions(request)
        for model, ma in admin.site._registry.items()
    }

    assert offered["testapp.question"]
    assert offered["testapp.tag"]
    assert offered["auth.user"]
    assert not offered["taskops.dispatch"]
    assert not offered["taskops.redispatch"]
    choices = dict(admin.site._registry[Question].get_action_choices(request))
    assert choices[RUN_TASK_ACTION] == "Run a task for the selected questions"


def test_a_model_can_be_left_out(client: Client, role: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's opt-out: a ModelAdmin pops the action in ``get_actions``."""
    client.force_login(role("superuser"))
    question_admin = admin.site._registry[Question]
    original = question_admin.get_actions

    def without(request: Any, action_location: Any = None) -> Any:
        where = {} if action_location is None else {"action_location": action_location}  # Django 6.1 passes it
        actions = original(request, **where)
        actions.pop(RUN_TASK_ACTION, None)
        return actions

    monkeypatch.setattr(question_admin, "get_actions", without)
    Question.objects.create(title="q", body="b")
    Tag.objects.create(name="t")

    html = client.get(QUESTIONS).content.decode()

    assert RUN_TASK_ACTION not in html
    assert RUN_TASK_ACTION in client.get(reverse("admin:testapp_tag_changelist")).content.decode()


def test_the_mixin_leaves_a_model_out(role: Any) -> None:
    """The README's opt-out with the mixin taskops' own admins use."""

    class OptedOut(WithoutRunTask, admin.ModelAdmin):
        pass

    request = RequestFactory().get("/")
    request.user = role("superuser")

    assert RUN_TASK_ACTION not in OptedOut(Question, admin.site).get_actions(request)
    assert RUN_TASK_ACTION in admin.ModelAdmin(Question, admin.site).get_actions(request)


def test_the_selection_is_kept_and_the_form_is_filled_in(operator_client: Client, questions: list[Question]) -> None:
    response = run_task(operator_client, QUESTIONS, [q.pk for q in questions[:2]])

    ticket = RedispatchTicket.objects.get(purpose="selection")
    assert response["Location"] == f"{FORM}?selection={ticket.token}"
    assert (ticket.model, sorted(ticket.data["pks"])) == ("testapp.question", sorted(str(q.pk) for q in questions[:2]))
    page = operator_client.get(response["Location"])
    form = page.context["form"]
    assert [name for name, _label in form.fields["task"].choices] == ["", review_question.name]  # takes questions
    assert "2 questions selected on their changelist" in page.content.decode()


def test_a_model_no_task_takes_is_told_so(operator_client: Client, role: Any) -> None:
    tag = Tag.objects.create(name="t")
    operator_client.force_login(role("superuser"))

    response = run_task(operator_client, reverse("admin:testapp_tag_changelist"), [str(tag.pk)])

    assert messages_of(response) == ["No task that re-dispatch allows takes tags."]
    assert not RedispatchTicket.objects.exists()


@override_settings(TASKOPS={"REDISPATCH_MAX_CALLS": 2})
def test_a_selection_over_the_cap_is_refused_before_it_is_read(
    operator_client: Client, questions: list[Question]
) -> None:
    response = run_task(operator_client, QUESTIONS, [q.pk for q in questions])

    assert messages_of(response) == ["3 questions selected, more than the 2 one re-dispatch may take."]
    assert not RedispatchTicket.objects.exists()


LARGE = 50_000


@pytest.mark.django_db(transaction=True)  # the fan-out is sent when the audit commits
@override_settings(TASKOPS={"REDISPATCH_QUEUE": IDLE})
def test_fifty_thousand_selected_rows_go_through(operator_client: Client, published: list[Any]) -> None:
    """ "Select all" over 50,000 rows: kept in one row, checked, previewed and published in the background."""
    Question.objects.bulk_create(Question(title=f"q{i}", body="b") for i in range(LARGE))
    pks = list(Question.objects.order_by("pk").values_list("pk", flat=True)[:100])
    started = time.monotonic()

    chosen = run_task(operator_client, QUESTIONS, pks, select_across="1")
    token = chosen["Location"].split("selection=")[1]
    preview = operator_client.post(FORM, {**review_data(), "selection": token})
    ticket = preview.content.decode().split('name="confirm" value="')[1].split('"')[0]
    done = operator_client.post(FORM, {"confirm": ticket})

    redispatch = Redispatch.objects.get()
    assert done["Location"] == f"/admin/taskops/redispatch/{redispatch.pk}/change/"
    assert (redispatch.total, redispatch.items.count()) == (LARGE, LARGE)
    assert [headers["task"] for headers in published] == ["taskops.redispatch.fan_out"]  # to the background
    assert preview.context["preview"].background
    assert preview.context["preview"].count == LARGE
    assert recording.flush()
    assert list(Dispatch.objects.values_list("task_name", flat=True)) == ["taskops.redispatch.fan_out"]
    assert time.monotonic() - started < 120
