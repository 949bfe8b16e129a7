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


def offered_on(user: Any) -> dict[str, bool]:
    """Whether each registered model's changelist lists the action for ``user``."""
    request = RequestFactory().get("/")
    request.user = user
    return {
        model._meta.label_lower: RUN_TASK_ACTION in ma.get_actions(request)
        for model, ma in admin.site._registry.items()
    }


def test_it_is_listed_where_an_allowed_task_takes_the_model(role: Any) -> None:
    request = RequestFactory().get("/")
    request.user = role("superuser")  # may view everything

    offered = offered_on(request.user)

    assert offered["testapp.question"]  # review_question takes questions
    assert not offered["testapp.tag"]  # no allowed task takes tags
    assert not offered["auth.user"]
    assert offered_on(role("operator"))["testapp.question"]
    assert not offered["taskops.dispatch"]
    assert not offered["taskops.redispatch"]
    choices = dict(admin.site._registry[Question].get_action_choices(request))
    assert choices[RUN_TASK_ACTION] == "Run a task for the selected questions"


def test_it_is_not_listed_to_a_viewer_who_may_not_redispatch(role: Any) -> None:
    assert not offered_on(role("viewer"))["testapp.question"]  # may view questions, may not re-dispatch


def test_the_listing_follows_the_settings(role: Any) -> None:
    """The cached answer is keyed on the settings: a test that changes them is not answered from before."""
    operator = role("operator")
    assert offered_on(operator)["testapp.question"]
    with override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.book"]}):
        assert not offered_on(operator)["testapp.question"]
    assert offered_on(operator)["testapp.question"]


def test_every_model_admin_has_the_permission_method_and_the_mixin_says_no(role: Any) -> None:
    request = RequestFactory().get("/")
    request.user = role("superuser")

    assert admin.ModelAdmin(Question, admin.site).has_taskops_run_task_permission(request)  # type: ignore[attr-defined]
    assert not admin.ModelAdmin(Tag, admin.site).has_taskops_run_task_permission(request)  # type: ignore[attr-defined]
    assert not admin.site._registry[Redispatch].has_taskops_run_task_permission(request)  # type: ignore[attr-defined]


def test_a_post_of_the_action_where_it_is_not_listed_is_refused(client: Client, role: Any) -> None:
    """Django runs only the actions ``get_actions`` lists: a viewer's forged POST does nothing."""
    question = Question.objects.create(title="q", body="b")
    client.force_login(role("viewer"))

    response = run_task(client, QUESTIONS, [str(question.pk)])

    assert response.status_code == 200  # no action at all is listed to them: just the changelist again
    assert RUN_TASK_ACTION not in response.content.decode()
    assert messages_of(response) == []
    assert not RedispatchTicket.objects.exists()


def test_a_model_can_be_left_out(role: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's opt-out: a ModelAdmin says no in ``has_taskops_run_task_permission``."""
    question_admin = admin.site._registry[Question]
    monkeypatch.setattr(question_admin, "has_taskops_run_task_permission", lambda request: False, raising=False)

    assert not offered_on(role("superuser"))["testapp.question"]


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


def test_a_post_on_a_model_no_task_takes_is_refused(operator_client: Client, role: Any) -> None:
    tag = Tag.objects.create(name="t")
    operator_client.force_login(role("superuser"))

    response = run_task(operator_client, reverse("admin:testapp_tag_changelist"), [str(tag.pk)])

    assert messages_of(response) == ["No action selected."]
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
