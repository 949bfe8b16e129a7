"""The generic form: built from the task's signature, checked by the service, previewed, confirmed once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from taskops.models import Dispatch, Redispatch, RedispatchItem, RedispatchTicket
from tests.admin.redispatch.conftest import FORM, HTMX, review_data
from tests.testapp.models import Answer, Book, Question
from tests.testapp.tasks import count_books, pair_books, price_book, review_question, touch_book

pytestmark = pytest.mark.django_db


def ticket_of(html: str) -> str:
    found = re.search(r'name="confirm" value="([^"]+)"', html)
    assert found, "no confirmation in the preview"
    return found.group(1)


def test_the_task_list_offers_only_allowed_tasks_that_take_objects(operator_client: Client) -> None:
    html = operator_client.get(FORM).content.decode()

    offered = re.findall(r'<option value="([^"]+)"', html)
    assert offered == sorted(
        [count_books.name, pair_books.name, price_book.name, review_question.name, touch_book.name]
    )


def test_a_chosen_task_gets_one_input_per_parameter_and_attribute(operator_client: Client) -> None:
    response = operator_client.get(FORM, {"task": review_question.name})

    form = response.context["form"]
    assert list(form.fields) == [
        "task",
        "model",
        "arg-question",
        "arg-review-reviewer",
        "arg-review-due",
        "arg-review-answer",
        "arg-review-urgent",
        "arg-copies",
        "queue",
        "countdown",
        "priority",
        "reason",
    ]
    html = response.content.decode()
    # Questions and answers have search_fields: the admin's autocomplete widgets, asking taskops' search.
    picker = re.search(r'<select name="arg-question"[^>]*>', html)
    assert picker is not None
    assert "admin-autocomplete" in picker.group(0)
    assert "multiple" in picker.group(0)
    assert f'data-ajax--url="/admin/taskops/dispatch/redispatch/autocomplete/?task={review_question.name}"' in html
    assert re.search(r'<select name="arg-review-answer"[^>]*admin-autocomplete', html)
    assert 'name="arg-copies"' in html
    assert 'type="number"' in html
    assert '<code class="taskops-annotation">ReviewRequest</code>' in html


def test_a_model_without_search_gets_typed_pks_and_says_why(operator_client: Client) -> None:
    html = operator_client.get(FORM, {"task": touch_book.name}).content.decode()

    assert "<textarea" not in html.split('name="arg-book"')[0][-200:]  # a text input, no select
    assert 'name="arg-book"' in html
    assert "books have no admin page to search them: type their primary keys." in html.lower()


def test_several_parameters_that_take_the_model_are_a_choice(operator_client: Client) -> None:
    form = operator_client.get(FORM, {"task": pair_books.name}).context["form"]

    assert [value for value, _label in form.fields["parameter"].choices] == ["first", "second"]
    assert form.target.path == ("first",)


def test_a_preview_lists_the_objects_with_their_last_dispatch(
    operator_client: Client, questions: list[Question], published: list[Any]
) -> None:
    response = operator_client.post(FORM, review_data(*questions[:2]), headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the preview partial only
    assert html.count('class="taskops-preview-object"') == 2
    assert "2 calls of <code>tests.testapp.tasks.review_question</code>, one per object." in html
    assert "never" in html  # no earlier dispatch of this task
    assert 'hx-swap-oob="true"' in html  # the inputs' error boxes, emptied
    assert RedispatchTicket.objects.filter(purpose="confirmation").count() == 1
    assert published == []
    assert not Redispatch.objects.exists()


def test_input_errors_show_at_their_inputs(operator_client: Client, questions: list[Question]) -> None:
    response = operator_client.post(FORM, review_data(questions[0], **{"arg-review-due": "soon", "arg-copies": "x"}))

    form = response.context["form"]
    assert form.errors["arg-review-due"] == ["Enter a valid date."]
    assert form.errors["arg-copies"] == ["Enter a whole number."]
    assert response.context["preview"] is None


def test_the_services_refusal_shows_at_the_fields_it_concerns(
    operator_client: Client, questions: list[Question]
) -> None:
    response = operator_client.post(FORM, review_data(questions[0], countdown="-5", priority="300"), headers=HTMX)

    form = response.context_data["form"]  # type: ignore[index]  # a TemplateResponse
    assert form.errors["countdown"] == ["A countdown is between 0 and 604800 seconds (a week)."]
    assert form.errors["priority"] == ["A priority is between 0 and 255."]
    html = response.content.decode()
    assert re.search(r'id="taskops-errors-countdown"[^>]*hx-swap-oob="true"[^>]*>.*between 0 and 604800', html)


def test_an_attrs_class_that_refuses_its_values_is_an_error_at_its_inputs(
    operator_client: Client, questions: list[Question]
) -> None:
    answer = Answer.objects.create(question=questions[0], body="b")

    response = operator_client.post(FORM, review_data(questions[0], **{"arg-review-answer": str(answer.pk)}))

    assert response.context["form"].errors == {}
    assert response.context["form"].kwargs["review"].answer == answer


def test_confirming_publishes_once_and_audits(
    operator_client: Client, questions: list[Question], published: list[Any]
) -> None:
    ticket = ticket_of(operator_client.post(FORM, review_data(*questions)).content.decode())

    first = operator_client.post(FORM, {"confirm": ticket})
    again = operator_client.post(FORM, {"confirm": ticket})  # a double submit

    redispatch = Redispatch.objects.get()
    assert first.status_code == 302
    assert first["Location"] == f"/admin/taskops/redispatch/{redispatch.pk}/change/"
    assert (redispatch.total, redispatch.published, redispatch.outcome) == (3, 3, Redispatch.Outcome.DONE)
    assert [headers["task"] for headers in published] == [review_question.name] * 3
    assert again.status_code == 302
    assert again["Location"] == FORM
    messages = [str(m) for m in again.wsgi_request._messages]  # type: ignore[attr-defined]
    assert any("confirmed already" in message for message in messages)
    assert LogEntry.objects.filter(object_id=str(redispatch.pk)).count() == 1
    items = RedispatchItem.objects.filter(redispatch=redispatch).order_by("position")
    assert [item.target for item in items] == [str(q.pk) for q in sorted(questions, key=lambda q: q.pk)]


def test_confirming_while_the_broker_is_down_says_so_and_keeps_the_audit(
    operator_client: Client, questions: list[Question], published: list[Any], broker_down: None
) -> None:
    ticket = ticket_of(operator_client.post(FORM, review_data(*questions)).content.decode())

    response = operator_client.post(FORM, {"confirm": ticket}, follow=True)

    redispatch = Redispatch.objects.get()
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/admin/taskops/redispatch/{redispatch.pk}/change/", 302)]
    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.FAILED, 0)
    messages = [str(m) for m in response.context["messages"]]
    assert any(
        f"Re-dispatch #{redispatch.pk} stopped: OperationalError" in m and "0 of 3 published" in m for m in messages
    )
    assert "Resume" in response.content.decode()  # the page offers to publish the rest
    assert published == []


def test_a_list_parameter_gets_one_call_with_the_list(operator_client: Client, published: list[Any]) -> None:
    books = [Book.objects.create(title=f"b{i}") for i in range(3)]
    data = {
        "task": count_books.name,
        "model": "testapp.book",
        "arg-books": " ".join(str(b.pk) for b in books),
        "queue": "taskops-tests-idle",
        "reason": "recount",
    }
    ticket = ticket_of(operator_client.post(FORM, data).content.decode())
    operator_client.post(FORM, {"confirm": ticket})

    redispatch = Redispatch.objects.get()
    assert (redispatch.total, redispatch.plan["many"]) == (1, True)
    assert len(published) == 1


def test_something_changed_since_the_preview_publishes_nothing(
    operator_client: Client, questions: list[Question], published: list[Any]
) -> None:
    ticket = ticket_of(operator_client.post(FORM, review_data(questions[0])).content.decode())
    questions[0].delete()

    response = operator_client.post(FORM, {"confirm": ticket})

    assert response.status_code == 200
    assert "arg-question" in response.context["form"].errors
    assert published == []
    assert not Dispatch.objects.exists()
    assert not Redispatch.objects.exists()
