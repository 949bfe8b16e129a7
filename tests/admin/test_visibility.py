"""Who may see what: nothing of another model's row without that model's view permission.

A permission matrix over every taskops page and partial. Each secret below
is something about a row of another model (its ``str()`` now or as recorded,
a field's value then or now, a link to it, its operator's name, a stored
result, whether it still exists); a user sees it only with the view
permission of that row's model, and then does see it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite, helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from taskops import checks
from taskops.admin.links import Linker
from taskops.admin.redispatch import tickets
from taskops.admin.visibility import Visibility, is_sensitive
from taskops.models import Alert, Dispatch, Drift, State
from taskops.redispatch import Options, for_objects, submit
from taskops.staleness import snapshot
from tests.admin.alerting import make_alert, make_rule
from tests.admin.helpers import CHANGELIST, change_url, history_url
from tests.factories import add_ref, make_dispatch
from tests.redispatch.conftest import IDLE, published  # noqa: F401  (a fixture: what was published)
from tests.testapp.models import Book, Question
from tests.testapp.tasks import notify_followers, review_question, touch_book

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


# --- the operator pages: re-dispatch, its audit, alerts; and a model whose admin refuses everyone ---


class HiddenBookAdmin(admin.ModelAdmin):
    """An admin that lets nobody view books, whatever their permissions: nothing of a book may show."""

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return False


#: The taskops permissions of the operator pages, given to every role below but anonymous and plain staff.
OPERATOR_PAGES = ["redispatch_dispatch", "view_redispatch", "view_alert", "view_alertrule"]


class Operations:
    """A re-dispatch, an alert and its rule, a redacted dispatch, each with a change logged by ``actor``.

    The secrets: a question's ``str()`` and the actor's name (shown with view permission on questions and
    users), and a book's ``str()`` (never: its admin refuses everyone, even superusers).
    """

    def __init__(self) -> None:
        self.actor = User.objects.create_user("actor-secret-name")
        self.actor.user_permissions.add(
            *Permission.objects.filter(codename__in=["redispatch_dispatch", "view_question", "view_book"])
        )
        self.actor = User.objects.get(pk=self.actor.pk)
        self.question = Question.objects.create(title="question-secret-title", body="b")
        self.book = Book.objects.create(title="book-hidden-secret")
        self.question_dispatch = make_dispatch(self.question, task_name=review_question.name)
        self.book_dispatch = make_dispatch(self.book, task_name=touch_book.name)
        self.redispatch = submit(
            for_objects(
                user=self.actor,
                task_name=touch_book.name,
                model_label="testapp.book",
                pks=[self.book.pk],
                reason="r",
                options=Options(queue=IDLE),
            )
        )
        self.rule = make_rule()
        self.alert = make_alert(
            self.rule,
            samples=[self.question_dispatch.pk, self.book_dispatch.pk],
            status=Alert.Status.ACKNOWLEDGED,
            acknowledged_by=self.actor,
            acknowledged_at=timezone.now(),
        )
        result = cast(Any, notify_followers).apply_async(
            (self.question,), {"message": "hi"}, kwargsrepr="{redacted}", queue=IDLE
        )
        self.redacted_task_id = result.id
        self.question_change_url = change_url(self.question)
        self.actor_change_url = change_url(self.actor)

    def log_changes(self) -> None:
        """A change by the actor on each taskops object (once the records are written)."""
        self.redacted = Dispatch.objects.get(task_id=self.redacted_task_id)
        for obj in (self.redispatch, self.alert, self.rule, self.redacted):
            LogEntry.objects.log_actions(self.actor.pk, [obj], CHANGE, change_message="Looked.", single_object=True)


@pytest.fixture
def operations(django_capture_on_commit_callbacks: Any, published: list[Any]) -> Iterator[Operations]:  # noqa: F811
    admin.site.register(Book, HiddenBookAdmin)
    try:
        # Published records written at the call (on commit: the test's transaction), not by the writer thread.
        inline = override_settings(TASKOPS={**VALUES, "WRITE_BEHIND": False})
        with inline, django_capture_on_commit_callbacks(execute=True):
            world = Operations()
        world.log_changes()
        yield world
    finally:
        admin.site.unregister(Book)


def preview_of(task: str, model: str, parameter: str, pk: int, **more: str) -> dict[str, Any]:
    return {"task": task, "model": model, f"arg-{parameter}": [str(pk)], "queue": IDLE, "reason": "r", **more}


REVIEW = {"arg-review-reviewer": "ada", "arg-review-due": "2030-01-01", "arg-copies": "1"}
SEARCH = reverse("admin:taskops_dispatch_redispatch_autocomplete")
FORM = reverse("admin:taskops_dispatch_redispatch")
HTMX = {"HX-Request": "true"}


def replay_of(*dispatches: Dispatch) -> dict[str, Any]:
    return {"action": "redispatch_selected", helpers.ACTION_CHECKBOX_NAME: [str(d.pk) for d in dispatches]}


def history(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_history", args=[obj.pk])


#: A request: (method, URL, POST data, headers), made from the world and the requesting user.
Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]
#: Operator pages: name -> (the request, the secrets it shows to a user who may view questions and users).
OPERATOR_PAGE_REQUESTS: dict[str, tuple[Callable[[Operations, User], Request], set[str]]] = {
    "form": (lambda w, u: ("get", f"{FORM}?task={review_question.name}", None, {}), set()),
    "form-preview": (
        lambda w, u: (
            "post",
            FORM,
            preview_of(review_question.name, "testapp.question", "question", w.question.pk, **REVIEW),
            {},
        ),
        {"question-secret-title", "question-link"},
    ),
    "form-preview-partial": (
        lambda w, u: (
            "post",
            FORM,
            preview_of(review_question.name, "testapp.question", "question", w.question.pk, **REVIEW),
            HTMX,
        ),
        {"question-secret-title", "question-link"},
    ),
    "form-preview-of-a-hidden-model": (
        lambda w, u: ("post", FORM, preview_of(touch_book.name, "testapp.book", "book", w.book.pk), HTMX),
        set(),
    ),
    "form-from-run-a-task": (
        lambda w, u: ("get", f"{FORM}?selection={tickets.keep_selection(u, Question.objects.all())}", None, {}),
        set(),
    ),
    "autocomplete": (
        lambda w, u: (
            "get",
            f"{SEARCH}?task={review_question.name}&field_name=arg-question&app_label=testapp&model_name=question&term=question",
            None,
            {},
        ),
        {"question-secret-title"},
    ),
    "autocomplete-of-a-hidden-model": (
        lambda w, u: (
            "get",
            f"{SEARCH}?task={touch_book.name}&field_name=arg-book&app_label=testapp&model_name=book&term=book",
            None,
            {},
        ),
        set(),
    ),
    "replay-confirmation": (
        lambda w, u: ("post", CHANGELIST, replay_of(w.question_dispatch, w.book_dispatch), {}),
        {"question-secret-title", "question-link"},
    ),
    "redispatch-progress": (
        lambda w, u: ("get", change_url(w.redispatch), None, {}),
        {"actor-secret-name", "actor-link"},
    ),
    "redispatch-progress-poll": (lambda w, u: ("get", change_url(w.redispatch), None, HTMX), set()),
    "redispatch-changelist": (
        lambda w, u: ("get", reverse("admin:taskops_redispatch_changelist"), None, {}),
        {"actor-secret-name", "actor-link"},
    ),
    "redispatch-history": (lambda w, u: ("get", history(w.redispatch), None, {}), {"actor-secret-name", "actor-link"}),
    "alert-changelist": (
        lambda w, u: ("get", reverse("admin:taskops_alert_changelist"), None, {}),
        {"actor-secret-name", "actor-link"},
    ),
    "alert": (lambda w, u: ("get", change_url(w.alert), None, {}), {"actor-secret-name", "actor-link"}),
    "alert-history": (lambda w, u: ("get", history(w.alert), None, {}), {"actor-secret-name", "actor-link"}),
    "alertrule-changelist": (lambda w, u: ("get", reverse("admin:taskops_alertrule_changelist"), None, {}), set()),
    "alertrule": (lambda w, u: ("get", change_url(w.rule), None, {}), set()),
    "alertrule-history": (lambda w, u: ("get", history(w.rule), None, {}), {"actor-secret-name", "actor-link"}),
    "redacted-dispatch": (lambda w, u: ("get", change_url(w.redacted), None, {}), {"question-link"}),
    "redacted-dispatch-history": (
        lambda w, u: ("get", history(w.redacted), None, {}),
        {"actor-secret-name", "actor-link"},
    ),
}
OPERATOR_SECRETS = {"question-secret-title", "actor-secret-name", "book-hidden-secret"}


def operator_page_secrets(html: str, world: Operations) -> set[str]:
    """Which of the operations' secrets a page (or JSON) shows."""
    found = {
        "question-link": f'href="{world.question_change_url}"' in html,
        "actor-link": f'href="{world.actor_change_url}"' in html,
    }
    return {secret for secret in OPERATOR_SECRETS if secret in html} | {
        name for name, present in found.items() if present
    }


def expected_statuses(page: str, sees: bool) -> tuple[int, ...]:
    """Every page shows (286: a settled poll), but the search of a model the user may not view: refused."""
    if page == "autocomplete-of-a-hidden-model":
        return (403, 404)  # its admin refuses everyone
    if page == "autocomplete" and not sees:
        return (403,)
    return (200, 286)


def requested(client: Client, request: Request) -> Any:
    method, url, data, headers = request
    if method == "post":
        return client.post(url, data, headers=headers)
    return client.get(url, headers=headers)


@pytest.mark.parametrize("page", OPERATOR_PAGE_REQUESTS)
@pytest.mark.parametrize(
    ("who", "codenames", "superuser", "sees"),
    [
        ("view-only", ["view_dispatch", *OPERATOR_PAGES], False, False),
        ("change-dispatch-only", ["change_dispatch", *OPERATOR_PAGES], False, False),
        ("view-dispatch-and-the-models", [*EVERY_VIEW, *OPERATOR_PAGES], False, True),
        ("superuser", [], True, True),
    ],
)
@override_settings(TASKOPS=VALUES)
def test_the_operator_pages_show_a_row_only_to_users_who_may_view_its_model(
    client: Client, operations: Operations, page: str, who: str, codenames: list[str], superuser: bool, sees: bool
) -> None:
    make_request, secrets = OPERATOR_PAGE_REQUESTS[page]
    user = user_with(*codenames, superuser=superuser)
    client.force_login(user)

    response = requested(client, make_request(operations, user))

    assert response.status_code in expected_statuses(page, sees)
    html = response.content.decode()
    assert operator_page_secrets(html, operations) == (secrets if sees else set())
    assert "book-hidden-secret" not in html  # its admin lets nobody view it: not even a superuser


@pytest.mark.parametrize("page", OPERATOR_PAGE_REQUESTS)
def test_the_operator_pages_show_nothing_to_anonymous_and_staff_without_permission(
    client: Client, operations: Operations, page: str
) -> None:
    make_request, _secrets = OPERATOR_PAGE_REQUESTS[page]
    anonymous = requested(client, make_request(operations, operations.actor))
    staff = user_with("view_question", "view_book", "view_user")
    client.force_login(staff)

    refused = requested(client, make_request(operations, staff))

    assert anonymous.status_code == 302
    assert refused.status_code == 403
    assert operator_page_secrets(anonymous.content.decode() + refused.content.decode(), operations) == set()
