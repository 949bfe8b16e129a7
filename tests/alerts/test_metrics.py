"""The metrics endpoint: 401 or 403 without the right credentials, the families with them."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from taskops import recording
from taskops.alerts import evaluate
from taskops.alerts.metrics import CACHE_KEY
from taskops.models import AlertRule, Condition, Dispatch, Drift, State
from tests.factories import make_dispatch
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db

TOKEN = "a-long-metrics-token-0123456789"
TASK = "tests.testapp.tasks.touch_book"


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


@override_settings(TASKOPS={"METRICS_TOKEN": TOKEN})
def test_without_credentials_401(client: Client) -> None:
    response = client.get("/metrics/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics/", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401


@override_settings(TASKOPS={"METRICS_TOKEN": TOKEN})
def test_a_user_without_permission_403(client: Client) -> None:
    client.force_login(User.objects.create_user("u", is_staff=True))
    assert client.get("/metrics/").status_code == 403


def test_staff_who_may_view_dispatches_200(client: Client) -> None:
    user = User.objects.create_user("u", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_dispatch"))
    client.force_login(user)
    assert client.get("/metrics/").status_code == 200


@override_settings(TASKOPS={"METRICS_TOKEN": TOKEN})
def test_the_families_parse(client: Client) -> None:
    now = timezone.now()
    make_dispatch(Book.objects.create(title="a"), task_name=TASK, lag=dt.timedelta(seconds=2), drift=Drift.CHANGED)
    make_dispatch(Book.objects.create(title="b"), task_name=TASK, drift=Drift.MISSING, state=State.FAILURE)
    make_dispatch(task_name=TASK, state=State.PENDING, lag=None, enqueued_at=now - dt.timedelta(seconds=90), queue="q1")
    AlertRule.objects.create(name="missing", task_pattern="*", condition=Condition.ANY_MISSING)
    evaluate(now)

    response = client.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "taskops_dispatches",
        "taskops_lag_seconds",
        "taskops_drift",
        "taskops_backlog_oldest_seconds",
        "taskops_alerts_open",
        "taskops_recording_dropped",
        "taskops_recording_errors",
        "taskops_recording_backlog",
    } <= set(families)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("taskops_dispatches", (("state", "FAILURE"), ("task", TASK)))] == 1
    assert samples[("taskops_lag_seconds_bucket", (("le", "5.0"), ("task", TASK)))] == 2
    assert samples[("taskops_lag_seconds_bucket", (("le", "1.0"), ("task", TASK)))] == 1  # the failure's lag: 0.25 s
    assert samples[("taskops_drift", (("drift", "missing"), ("task", TASK)))] == 1
    assert samples[("taskops_backlog_oldest_seconds", (("queue", "q1"),))] >= 90
    assert samples[("taskops_alerts_open", (("rule", "missing"),))] == 1
    assert samples[("taskops_recording_dropped_total", ())] == recording.dropped_count()
    assert samples[("taskops_recording_errors_total", ())] == recording.error_count()


def test_the_process_counters_are_never_cached(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.force_login(User.objects.create_superuser("root"))
    assert b"taskops_recording_dropped_total 0.0" in client.get("/metrics/").content
    monkeypatch.setattr(recording, "dropped_count", lambda: 7)
    assert b"taskops_recording_dropped_total 7.0" in client.get("/metrics/").content  # a cached scrape, a fresh counter


def dispatch_queries(client: Client) -> int:
    """Scrape once; the queries that read dispatches."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    return sum(Dispatch._meta.db_table in query["sql"] for query in queries.captured_queries)


@override_settings(TASKOPS={"METRICS_TOKEN": TOKEN, "METRICS_CACHE_SECONDS": 1})
def test_a_scrape_within_the_cache_seconds_reads_no_dispatch_and_one_after_them_reads_again(client: Client) -> None:
    make_dispatch(task_name=TASK)

    assert dispatch_queries(client) > 0  # computed
    assert dispatch_queries(client) == 0  # the figures of the first scrape, from the cache
    time.sleep(1.1)
    assert dispatch_queries(client) > 0  # expired: computed again


@override_settings(
    TASKOPS={"METRICS_TOKEN": TOKEN, "METRICS_CACHE": "shared"},
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "shared": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "metrics-tests"},
    },
)
def test_the_figures_are_kept_in_the_cache_metrics_cache_names(client: Client) -> None:
    make_dispatch(task_name=TASK)

    assert dispatch_queries(client) > 0
    assert dispatch_queries(client) == 0  # the default cache keeps nothing: "shared" held them
    assert caches["shared"].get(CACHE_KEY).startswith(b"# HELP taskops_dispatches")
