"""Who may see what: nothing of another model's row without that model's view permission.

A permission matrix over every taskops page and partial. Each secret below
is something about a row of another model (its ``str()`` now or as recorded,
a field's value then or now, a link to it, its operator's name, a stored
result, whether it still exists); a user sees it only with the view
permission of that row's model, and then does see it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth.models import Permission, User
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django_celery_results.models import TaskResult

from taskops import checks
from taskops.admin.links import Linker
from taskops.admin.visibility import Visibility, is_sensitive
from taskops.models import Drift, State
from taskops.staleness import snapshot
from tests.admin.helpers import CHANGELIST, change_url, history_url
from tests.factories import add_ref, make_dispatch
from tests.testapp.models import Book, Question

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:taskops_dispatch_dashboard")
VALUES = {"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["title"], "auth.user": ["password", "username"]}}

#: The view permissions that show every secret of the world below.
EVERY_VIEW = ["view_dispatch", "view_question", "view_book", "view_user", "view_taskresult"]


class World:
    """Dispatches about a question (registered), a deleted book (not registered), users; and the secrets."""

    def __init__(self) -> None:
        operator = User.objects.create_user("operator-secret-name")
        self.bystander = User.objects.create_user("bystander-never-dispatched")
        self.question = Question.objects.create(title="question-recorded-secret", body="b")
        self.changed = make_dispatch(
            self.question,
            drift=Drift.CHANGED,
            changed_fields=["title"],
            values={"title": "question-old-secret"},
            dispatched_by=operator,
        )
        Question.objects.filter(pk=self.question.pk).update(title="question-now-secret")
        TaskResult.objects.create(
            task_id=self.changed.task_id, status="SUCCESS", result=json.dumps("result-secret"), traceback=""
        )
        book = Book.objects.create(title="book-recorded-secret")
        self.book_url = history_url(book)
        self.pending = make_dispatch(state=State.PENDING, args=[], ref_count=1)
        add_ref(self.pending, book, argument="args[0]", drift=Drift.PENDING, digests=snapshot.take(book))
        book.delete()
        self.question_change_url = change_url(self.question)
        self.operator_change_url = change_url(operator)


@pytest.fixture
def world() -> World:
    with override_settings(TASKOPS=VALUES):
        return World()


def user_with(*codenames: str, superuser: bool = False, username: str = "viewer") -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


#: Every page and partial: name -> (URL, request headers, the secrets it shows to a user who may see them).
PAGES: dict[str, tuple[Callable[[World], str], dict[str, str], set[str]]] = {
    "changelist": (
        lambda w: CHANGELIST,
        {},
        {"question-recorded-secret", "book-recorded-secret", "operator-secret-name", "operator-link", "question-link"},
    ),
    "changelist-search": (
        lambda w: f"{CHANGELIST}?q=testapp.question:{w.question.pk}",
        {},
        {"question-recorded-secret", "operator-secret-name", "operator-link", "question-link"},
    ),
    "detail": (
        lambda w: change_url(w.changed),
        {},
        {
            "question-recorded-secret",
            "question-old-secret",
            "question-now-secret",
            "operator-secret-name",
            "operator-link",
            "result-secret",
            "question-link",
        },
    ),
    "detail-of-a-deleted-row": (
        lambda w: change_url(w.pending),
        {},
        {"book-recorded-secret", "(no longer exists)"},
    ),
    "history": (lambda w: history_url(w.question), {}, {"question-now-secret", "question-link"}),
    "history-of-a-deleted-row": (lambda w: w.book_url, {}, {"book-recorded-secret", 'taskops-bad">no longer exists'}),
    "history-of-a-row-never-dispatched": (
        lambda w: history_url(w.bystander),
        {},
        {"bystander-never-dispatched"},
    ),
    "dashboard": (
        lambda w: DASHBOARD,
        {},
        {"question-recorded-secret", "book-recorded-secret", "question-link", "pending-stale"},
    ),
    "dashboard-partial": (
        lambda w: DASHBOARD + "?window=15m",
        {"HX-Request": "true"},
        {"question-recorded-secret", "book-recorded-secret", "question-link", "pending-stale"},
    ),
}
SECRETS = set().union(*(secrets for _url, _headers, secrets in PAGES.values()))


def shown_secrets(html: str, world: World) -> set[str]:
    """Which of the world's secrets a page shows."""
    shown = {secret for secret in SECRETS if secret in html}
    pending_panel = html.partition('id="taskops-pending-stale"')[2]
    found = {
        "question-link": f'href="{world.question_change_url}"' in html,
        "operator-link": f'href="{world.operator_change_url}"' in html,
        "pending-stale": f'href="{change_url(world.pending)}"' in pending_panel,
    }
    return (shown - set(found)) | {name for name, present in found.items() if present}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("who", "codenames", "superuser", "sees"),
    [
        ("view-only", ["view_dispatch"], False, False),
        ("change-dispatch-only", ["change_dispatch"], False, False),
        ("view-dispatch-and-the-models", EVERY_VIEW, False, True),
        ("superuser", [], True, True),
    ],
)
@override_settings(TASKOPS=VALUES)
def test_a_row_shows_only_to_users_who_may_view_its_model(
    client: Client, world: World, page: str, who: str, codenames: list[str], superuser: bool, sees: bool
) -> None:
    url, headers, secrets = PAGES[page]
    client.force_login(user_with(*codenames, superuser=superuser))

    response = client.get(url(world), headers=headers)

    assert response.status_code == 200
    assert shown_secrets(response.content.decode(), world) == (secrets if sees else set())


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_and_staff_without_permission_see_nothing(client: Client, world: World, page: str) -> None:
    url, headers, _secrets = PAGES[page]
    anonymous = client.get(url(world), headers=headers)
    client.force_login(user_with("view_question", "view_book", "view_user"))

    staff = client.get(url(world), headers=headers)

    assert anonymous.status_code == 302
    assert staff.status_code == 403
    assert shown_secrets(anonymous.content.decode() + staff.content.decode(), world) == set()


@override_settings(TASKOPS=VALUES)
def test_view_only_users_are_told_why_values_are_missing(client: Client, world: World) -> None:
    client.force_login(user_with("view_dispatch"))

    html = client.get(change_url(world.changed)).content.decode()

    assert "(value not shown)" in html
    assert "Task results are not shown: you may not view them." in html
    assert f"User #{world.changed.dispatched_by_id}" in html
    assert f"Question #{world.question.pk}" in html  # content type and pk: always


@override_settings(TASKOPS=VALUES)
def test_a_password_hash_never_shows(client: Client, admin_client: Client) -> None:
    target = User.objects.create_user("target", password="before")
    old_hash = target.password
    dispatch = make_dispatch(target, drift=Drift.CHANGED, changed_fields=["password"], values={"password": old_hash})
    target.set_password("after")
    target.save()
    client.force_login(user_with("view_dispatch"))

    view_only = client.get(change_url(dispatch)).content.decode()
    superuser = admin_client.get(change_url(dispatch)).content.decode()

    for html in (view_only, superuser):
        assert old_hash not in html
        assert target.password not in html
        assert "md5$" not in html
        assert "(value not shown)" in html
    assert "<code>password</code>" in superuser  # the changed field is named, its values are not


def test_sensitive_fields_are_configurable(admin_client: Client, question: Question) -> None:
    with override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["title"]}}):
        dispatch = make_dispatch(question, drift=Drift.CHANGED, changed_fields=["title"], values={"title": "was"})
        shown = admin_client.get(change_url(dispatch)).content.decode()
    settings = {"SNAPSHOT_VALUE_FIELDS": {"testapp.question": ["title"]}, "SENSITIVE_FIELDS": ["^tit"]}
    with override_settings(TASKOPS=settings):
        hidden = admin_client.get(change_url(dispatch)).content.decode()

    assert '<span class="taskops-old">was</span>' in shown
    assert '<span class="taskops-old">was</span>' not in hidden
    assert "(value not shown)" in hidden


def test_default_sensitive_patterns() -> None:
    assert all(is_sensitive(name) for name in ["password", "api_key", "API_TOKEN", "client_secret", "Passwd"])
    assert not any(is_sensitive(name) for name in ["title", "body", "score"])
    with override_settings(TASKOPS={"SENSITIVE_FIELDS": []}):
        assert not is_sensitive("password")


@override_settings(TASKOPS={"SENSITIVE_FIELDS": ["ok", "(unclosed"]})
def test_sensitive_fields_must_be_regular_expressions() -> None:
    assert [message.id for message in checks.check_settings()] == ["taskops.E002"]


def test_unregistered_models_follow_the_users_own_permission(rf: RequestFactory) -> None:
    empty_site = AdminSite(name="empty")
    editor, nobody = rf.get("/"), rf.get("/")
    editor.user = user_with("change_book", username="editor")
    nobody.user = user_with(username="nobody")
    visibility = Visibility(empty_site, editor)

    assert visibility.may_view(Book)  # change implies view, as in Django's has_view_permission
    assert not visibility.may_link(Book)  # no admin page to link to on that site
    assert not visibility.may_view(Question)  # not registered there either: the user's permission decides
    assert not Visibility(empty_site, nobody).may_view(Book)
    assert not Visibility(empty_site, editor).may_view(None)  # a model no longer installed


def test_without_a_request_nothing_of_a_row_shows(world: World) -> None:
    link = Linker(admin.site, None).ref_link(world.changed.refs.get())

    assert (link.text, link.url, link.visible) == ("", None, False)
    assert link.label == f"Question #{world.question.pk}"
