"""The object pickers' search: the target admin's search, paginated, for the inputs the form offers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.admin.redispatch.conftest import AUTOCOMPLETE
from tests.testapp.models import Answer, Question
from tests.testapp.tasks import review_question

pytestmark = pytest.mark.django_db


def search(client: Client, field_name: str, model_name: str, term: str, page: int = 1) -> dict[str, Any]:
    params = {
        "task": review_question.name,
        "field_name": field_name,
        "app_label": "testapp",
        "model_name": model_name,
        "term": term,
        "page": str(page),
    }
    response = client.get(AUTOCOMPLETE, params)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def test_it_searches_with_the_model_admins_search_fields(operator_client: Client) -> None:
    wanted = Question.objects.create(title="Cache invalidation", body="hard")
    Question.objects.create(title="Naming things", body="also hard")
    by_body = Question.objects.create(title="Off by one", body="the cache again")

    found = search(operator_client, "arg-question", "question", "cache")

    assert sorted(r["id"] for r in found["results"]) == sorted([str(wanted.pk), str(by_body.pk)])
    assert {"id": str(wanted.pk), "text": "Cache invalidation"} in found["results"]


def test_an_attribute_of_an_attrs_parameter_searches_its_own_model(operator_client: Client) -> None:
    question = Question.objects.create(title="q", body="b")
    answer = Answer.objects.create(question=question, body="Clear it after the commit.")

    found = search(operator_client, "arg-review-answer", "answer", "commit")

    assert found["results"] == [{"id": str(answer.pk), "text": str(answer)}]


def test_results_come_a_page_at_a_time(operator_client: Client) -> None:
    Question.objects.bulk_create(Question(title=f"Stale {i}", body="b") for i in range(25))

    first, second = (
        search(operator_client, "arg-question", "question", "stale"),
        search(operator_client, "arg-question", "question", "stale", page=2),
    )

    assert (len(first["results"]), first["pagination"]) == (20, {"more": True})
    assert (len(second["results"]), second["pagination"]) == (5, {"more": False})
