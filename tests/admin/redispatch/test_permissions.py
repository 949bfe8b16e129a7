"""Who may do what: the form, its search, both actions and a re-dispatch's page, for every kind of user; CSRF.

Roles (``conftest.ROLES``): anonymous; staff without permissions; a viewer
(dispatches, re-dispatches, questions; no re-dispatch); a "blind"
re-dispatcher (may re-dispatch, may not view questions); an operator (may
re-dispatch and view questions); a superuser. Nothing a refused user does
publishes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from taskops.models import Redispatch, RedispatchTicket
from taskops.redispatch import for_objects, submit
from tests.admin.redispatch.conftest import AUTOCOMPLETE, CHANGELIST, FORM, HTMX, IDLE, QUESTIONS, review_data
from tests.factories import make_dispatch
from tests.testapp.models import Book, Question
from tests.testapp.tasks import review_question, touch_book

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "staff", "viewer", "blind", "operator", "superuser"]


@pytest.fixture
def as_role(client: Client, role: Callable[[str], User]) -> Callable[[str], Client]:
    def log_in(name: str) -> Client:
        if name != "anonymous":
            client.force_login(role(name))
        return client

    return log_in


@pytest.fixture
def question() -> Question:
    return Question.objects.create(title="Secret question", body="b")


def is_login(response: Any) -> bool:
    return bool(response.status_code == 302 and response["Location"].startswith(reverse("admin:login")))


#: What each role gets from the form (GET), its preview (POST) and its search; and from a re-dispatch's page,
#: its htmx poll and "Resume".
EXPECTED: dict[str, dict[str, tuple[int, int, int]]] = {
    "staff": {"form": (403, 403, 403), "progress": (403, 403, 403)},
    "viewer": {"form": (403, 403, 403), "progress": (200, 286, 403)},
    "blind": {"form": (200, 200, 403), "progress": (200, 286, 302)},
    "operator": {"form": (200, 200, 200), "progress": (200, 286, 302)},
    "superuser": {"form": (200, 200, 200), "progress": (200, 286, 302)},
}


@pytest.mark.parametrize("name", ROLES)
def test_the_form_and_its_search(
    as_role: Callable[[str], Client], name: str, question: Question, published: list[Any]
) -> None:
    client = as_role(name)
    search = {"task": review_question.name, "field_name": "arg-question", "app_label": "testapp"}
    responses = [
        client.get(FORM, {"task": review_question.name}),
        client.post(FORM, review_data(question), headers=HTMX),
        client.get(AUTOCOMPLETE, {**search, "model_name": "question", "term": "Secret"}),
    ]

    if name == "anonymous":
        assert all(is_login(response) for response in responses)
    else:
        assert [response.status_code for response in responses] == list(EXPECTED[name]["form"])
    if name in ("operator", "superuser"):
        assert "Secret question" in responses[2].json()["results"][0]["text"]
        assert RedispatchTicket.objects.count() == 1  # the preview's
    if name == "blind":  # may re-dispatch, may not view questions: the form says so, the service refuses
        assert "You may not view questions." in responses[0].content.decode()
        form = responses[1].context_data["form"]  # type: ignore[index]
        assert form.errors["arg-question"] == ["You may not view questions."]
        assert "Secret question" not in responses[1].content.decode()
    assert published == []
    assert not Redispatch.objects.exists()


def replay_post(dispatch_pk: int, **more: str) -> dict[str, Any]:
    return {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: [str(dispatch_pk)], **more}


@pytest.mark.parametrize("name", ROLES)
def test_redispatch_selected(
    as_role: Callable[[str], Client], name: str, question: Question, published: list[Any]
) -> None:
    source = make_dispatch(Book.objects.create(title="Secret book"), task_name=touch_book.name)
    client = as_role(name)

    asked = client.post(CHANGELIST, replay_post(source.pk))

    if name == "anonymous":
        assert is_login(asked)
    elif name == "staff":
        assert asked.status_code == 403
    elif name == "viewer":  # no action is offered to them: the POST is just the changelist again
        assert asked.status_code == 200
        assert asked.context["cl"] is not None
        assert "redispatch_selected" not in asked.content.decode()
    else:
        html = asked.content.decode()
        assert asked.status_code == 200
        assert "Publish 1 dispatch again" in html
        refused = "You may not view books." in html
        assert refused == (name == "blind")
        assert ("Yes, re-dispatch" in html) == (not refused)
        ticket = asked.context["ticket"]
        confirmed = client.post(CHANGELIST, replay_post(source.pk, post="yes", ticket=ticket, reason="r", queue=IDLE))
        assert (confirmed.status_code == 302) == (not refused)
    published_now = name in ("operator", "superuser")
    assert Redispatch.objects.filter(kind=Redispatch.Kind.REPLAY).exists() == published_now
    assert len(published) == (1 if published_now else 0)


#: What each role gets from "Run a task for the selected questions" (the viewer: the changelist, no action ran).
ACTION_EXPECTED = {"staff": 403, "viewer": 200, "blind": 403, "operator": 302, "superuser": 302}


@pytest.mark.parametrize("name", ROLES)
def test_run_a_task_for_selected_objects(as_role: Callable[[str], Client], name: str, question: Question) -> None:
    client = as_role(name)

    response = client.post(
        QUESTIONS, {"action": "taskops_run_task", helpers.ACTION_CHECKBOX_NAME: [str(question.pk)], "index": "0"}
    )

    if name == "anonymous":
        assert is_login(response)
        return
    assert response.status_code == ACTION_EXPECTED[name]
    kept = RedispatchTicket.objects.filter(purpose="selection")
    if name == "viewer":  # may view questions, may not re-dispatch: the action is not theirs, nothing kept
        assert "taskops_run_task" not in response.content.decode()
        assert not kept.exists()
    elif name in ("operator", "superuser"):
        assert response["Location"] == f"{FORM}?selection={kept.get().token}"
        assert kept.get().data == {"pks": [str(question.pk)]}


@pytest.fixture
def redispatch(make_user: Callable[..., User], question: Question, published: list[Any]) -> Redispatch:
    owner = make_user("owner", "taskops.redispatch_dispatch", "testapp.view_question")
    draft = for_objects(
        user=owner,
        task_name=review_question.name,
        model_label="testapp.question",
        pks=[question.pk],
        kwargs={"review": review_data()["arg-review-reviewer"], "copies": 1},
        reason="r",
    )
    made = submit(draft)
    stopped = {"outcome": Redispatch.Outcome.FAILED, "error": "ConnectionError: gone", "finished_at": None}
    Redispatch.objects.filter(pk=made.pk).update(**stopped)
    return made


@pytest.mark.parametrize("name", ROLES)
def test_a_redispatch_page_and_resume(
    as_role: Callable[[str], Client], name: str, redispatch: Redispatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    monkeypatch.setattr("taskops.redispatch.start_fan_out", lambda r: started.append(r.pk))
    client = as_role(name)
    page = reverse("admin:taskops_redispatch_change", args=[redispatch.pk])

    responses = [
        client.get(page),
        client.get(page, headers=HTMX),
        client.post(reverse("admin:taskops_redispatch_resume", args=[redispatch.pk])),
    ]

    if name == "anonymous":
        assert all(is_login(response) for response in responses)
        return
    assert tuple(response.status_code for response in responses) == EXPECTED[name]["progress"]
    may_resume = name in ("operator", "superuser")
    if responses[0].status_code == 200:
        assert ('value="Resume"' in responses[0].content.decode()) == may_resume
    assert started == ([redispatch.pk] if may_resume else [])
    if name == "blind":  # may re-dispatch, may not view questions: resuming publishes questions, so refused
        messages = [str(m) for m in responses[2].wsgi_request._messages]  # type: ignore[attr-defined]
        assert messages == [f"{redispatch} was not resumed: model: You may not view questions."]
        assert Redispatch.objects.get(pk=redispatch.pk).outcome == Redispatch.Outcome.FAILED


CSRF_POSTS: list[tuple[str, Callable[[Question, int, int], tuple[str, dict[str, Any]]]]] = [
    ("preview", lambda q, d, r: (FORM, review_data(q))),
    ("confirm", lambda q, d, r: (FORM, {"confirm": "x"})),
    ("choose", lambda q, d, r: (FORM, {"task": review_question.name, "_choose": "1"})),
    ("redispatch selected", lambda q, d, r: (CHANGELIST, replay_post(d))),
    ("run a task", lambda q, d, r: (QUESTIONS, {"action": "taskops_run_task", "_selected_action": [q.pk]})),
    ("resume", lambda q, d, r: (reverse("admin:taskops_redispatch_resume", args=[r]), {})),
]


@pytest.mark.parametrize(("what", "post"), CSRF_POSTS, ids=[what for what, _post in CSRF_POSTS])
def test_every_post_needs_the_csrf_token(
    what: str,
    post: Callable[[Question, int, int], tuple[str, dict[str, Any]]],
    question: Question,
    redispatch: Redispatch,
    make_user: Callable[..., User],
    published: list[Any],
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("root", superuser=True))
    before = len(published)

    url, data = post(question, make_dispatch(question, task_name=review_question.name).pk, redispatch.pk)
    response = client.post(url, data)

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert len(published) == before
    assert Redispatch.objects.count() == 1
    assert not RedispatchTicket.objects.exists()


@pytest.mark.parametrize(
    ("name", "shown"), [("viewer", False), ("blind", True), ("operator", True), ("superuser", True)]
)
def test_the_changelist_links_to_the_form_for_those_who_may_use_it(
    as_role: Callable[[str], Client], name: str, shown: bool
) -> None:
    html = as_role(name).get(CHANGELIST).content.decode()

    assert (f'href="{FORM}" class="taskops-redispatchlink"' in html) == shown
