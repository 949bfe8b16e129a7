"""Hostile input on every taskops page is a 400 or an empty result, never a 500.

One sweep: every filter, the search box and every path parameter, each
with every hostile value. It runs on the database the suite runs on (SQLite,
and PostgreSQL in CI, which refuses NUL in text at the query).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.models import Dispatch, Redispatch
from tests.admin.helpers import CHANGELIST, result_task_ids
from tests.factories import make_dispatch
from tests.testapp.models import Question, Tag

pytestmark = pytest.mark.django_db

#: What a user can put in a URL, and a name for each.
HOSTILE: dict[str, str] = {
    "nul": "\x00",
    "nul-inside": "ab\x00cd",
    "nul-admin-quoted": "_00",  # the admin's own quoting of a path: unquoted, a NUL
    "long": "x" * 5_000,
    "not-utf8": "%ff",  # sent as a raw %ff: Django decodes it to U+FFFD (query) or keeps "%FF" (path)
    "sql": "' OR 1=1; DROP TABLE taskops_dispatch; --",
    "huge-int": "99999999999999999999",
    "negative": "-1",
    "wrong-type": "abc",
    "uuid-ish": "00000000-0000-0000-0000-00000000000z",
    "unicode-digit": "²",  # str.isdigit() says yes, int() refuses it
}

#: Query parameters that filter the changelist: a hostile value finds no dispatch, or is a 400.
FILTERS = [
    "q",
    "task",
    "queue",
    "state",
    "state__exact",
    "drift",
    "lag",
    "in_transaction__exact",
    "enqueued_at__gte",
    "enqueued_at__lt",
    "started_at__lt",
    "operation",
    "retries",
    "id",
    "no_such_field",
]
#: Query parameters that only choose how a page looks: a hostile value is ignored, or is a 400.
DISPLAY = [
    ("changelist", "p"),
    ("changelist", "o"),
    ("dashboard", "window"),
    ("dashboard", "sort"),
    ("history", "p"),
]


def query(name: str, value: str) -> str:
    """``?name=value``, with a raw ``%ff`` kept raw."""
    if value == "%ff":
        return f"?{quote(name)}=%ff"
    return "?" + urlencode({name: value})


def path_value(value: str) -> str:
    return value if value == "%ff" else quote(value, safe="")


@pytest.fixture
def dispatch() -> Dispatch:
    return make_dispatch(Question.objects.create(title="an ordinary question", body="b"))


def page_urls(dispatch: Dispatch) -> dict[str, str]:
    question_type = ContentType.objects.get_for_model(Question)
    return {
        "changelist": CHANGELIST,
        "dashboard": reverse("admin:taskops_dispatch_dashboard"),
        "history": reverse("admin:taskops_dispatch_object_history", args=[question_type.pk, "1"]),
    }


def assert_400_or_nothing_found(response_status: int, html: str) -> None:
    assert response_status in (200, 400), response_status
    if response_status == 200:
        assert result_task_ids(html) == []


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("param", FILTERS)
def test_changelist_filters_and_search(admin_client: Client, dispatch: Dispatch, param: str, value: str) -> None:
    response = admin_client.get(CHANGELIST + query(param, value))

    assert_400_or_nothing_found(response.status_code, response.content.decode())


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(("page", "param"), DISPLAY, ids=[f"{page}-{param}" for page, param in DISPLAY])
def test_display_parameters(admin_client: Client, dispatch: Dispatch, page: str, param: str, value: str) -> None:
    response = admin_client.get(page_urls(dispatch)[page] + query(param, value))

    assert response.status_code in (200, 400)


#: Path parameters: (name, URL for a hostile value).
PATHS: list[tuple[str, Callable[[str], str]]] = [
    ("history-object-pk", lambda v: f"/admin/taskops/dispatch/object-history/{type_id(Question)}/{path_value(v)}/"),
    ("history-uuid-pk", lambda v: f"/admin/taskops/dispatch/object-history/{type_id(Tag)}/{path_value(v)}/"),
    ("history-content-type", lambda v: f"/admin/taskops/dispatch/object-history/{path_value(v)}/1/"),
    ("detail", lambda v: f"/admin/taskops/dispatch/{path_value(v)}/change/"),
    ("django-history", lambda v: f"/admin/taskops/dispatch/{path_value(v)}/history/"),
    ("delete", lambda v: f"/admin/taskops/dispatch/{path_value(v)}/delete/"),
]


def type_id(model: type) -> int:
    return ContentType.objects.get_for_model(model).pk


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(("name", "url"), PATHS, ids=[name for name, _url in PATHS])
def test_path_parameters(
    admin_client: Client, dispatch: Dispatch, name: str, url: Callable[[str], str], value: str
) -> None:
    response = admin_client.get(url(value))

    if response.status_code == 302:  # an id a dispatch could have, none has: Django's own answer
        assert value == "-1"
        assert response["Location"] == reverse("admin:index")
        return
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        assert "No recorded dispatch referenced this object." in response.content.decode()


@pytest.mark.parametrize("content_type_id", ["999999", "99999999999999999999"])
def test_a_content_type_that_does_not_exist_is_a_400(admin_client: Client, content_type_id: str) -> None:
    response = admin_client.get(f"/admin/taskops/dispatch/object-history/{content_type_id}/1/")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        CHANGELIST + "?task=%00",
        CHANGELIST + "?queue=%00",
        CHANGELIST + "?state=%00",
        CHANGELIST + "?q=%00",
        reverse("admin:taskops_dispatch_dashboard") + "?window=%00",
        "/admin/taskops/dispatch/%00/change/",
    ],
)
def test_nul_is_a_400(admin_client: Client, dispatch: Dispatch, url: str) -> None:
    assert admin_client.get(url).status_code == 400


def test_nul_in_a_history_path_is_a_400(admin_client: Client) -> None:
    assert admin_client.get(f"/admin/taskops/dispatch/object-history/{type_id(Question)}/%00/").status_code == 400


def test_parameters_django_cannot_use_are_a_400_not_a_redirect(admin_client: Client, dispatch: Dispatch) -> None:
    for bad in ("?enqueued_at__gte=yesterday", "?no_such_field=1", "?in_transaction__exact=maybe"):
        assert admin_client.get(CHANGELIST + bad).status_code == 400


def test_unknown_drift_or_lag_finds_nothing(admin_client: Client, dispatch: Dispatch) -> None:
    for bad in ("?drift=stale", "?lag=forever"):
        response = admin_client.get(CHANGELIST + bad)
        assert response.status_code == 200
        assert result_task_ids(response.content.decode()) == []
    assert result_task_ids(admin_client.get(CHANGELIST + "?drift=").content.decode()) == [dispatch.task_id[:8]]


def test_a_bad_id_is_a_400_only_after_the_permission_check(client: Client, dispatch: Dispatch) -> None:
    client.force_login(User.objects.create_user("staff", is_staff=True))

    assert client.get("/admin/taskops/dispatch/abc/change/").status_code == 403
    assert client.get("/admin/taskops/dispatch/%00/history/").status_code == 403
    assert client.get(f"/admin/taskops/dispatch/object-history/{type_id(Question)}/%00/").status_code == 403


REDISPATCHES = reverse("admin:taskops_redispatch_changelist")
#: The re-dispatch audit's filters, search, order and page.
REDISPATCH_PARAMETERS = ["q", "kind__exact", "outcome__exact", "created_at__gte", "o", "p"]


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("param", REDISPATCH_PARAMETERS)
def test_redispatch_changelist(admin_client: Client, param: str, value: str) -> None:
    Redispatch.objects.create(
        created_at=timezone.now(), reason="r", kind=Redispatch.Kind.REPLAY, task_name="tests.ordinary_task"
    )

    response = admin_client.get(REDISPATCHES + query(param, value))

    assert response.status_code in (200, 400), response.status_code
    if "\x00" in value:
        assert response.status_code == 400
    elif response.status_code == 200 and param not in ("o", "p"):
        assert "tests.ordinary_task" not in response.content.decode()
