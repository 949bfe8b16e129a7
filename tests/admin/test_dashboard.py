"""The dashboard: figures for a window, percentiles, per-task table, charts, htmx refresh."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import attrs
import pytest
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from taskops.admin.dashboard import queries
from taskops.models import Dispatch, Drift, ObjectRef, State
from taskops.stats import has_percentile_cont
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:taskops_dispatch_dashboard")
SECOND = dt.timedelta(seconds=1)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def question() -> Question:
    return Question.objects.create(title="Dashboard question", body="b")


def metric(html: str, name: str) -> str:
    """The big number of one dashboard card."""
    match = re.search(rf'data-metric="{name}"><span class="taskops-value">([^<]*)</span>', html)
    assert match, f"no card {name}"
    return match.group(1)


def test_window_figures(question: Question) -> None:
    now = timezone.now()
    for seconds in (1, 2, 3):
        make_dispatch(question, enqueued_at=now - 5 * MINUTE, lag=seconds * SECOND)
    make_dispatch(question, state=State.FAILURE, enqueued_at=now - 4 * MINUTE, lag=4 * SECOND)
    make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"], enqueued_at=now - 3 * MINUTE)
    make_dispatch(question, drift=Drift.MISSING, enqueued_at=now - 2 * MINUTE)
    make_dispatch(question, state=State.STARTED, enqueued_at=now - MINUTE)
    make_dispatch(question, state=State.PENDING, enqueued_at=now - 2 * dt.timedelta(hours=2))  # outside 1 h
    make_dispatch(question, state=State.PENDING, enqueued_at=now - 30 * SECOND)
    make_dispatch(question, enqueued_at=now - dt.timedelta(hours=3))  # outside 1 h

    board = queries.collect(queries.WINDOWS["1h"], now=now)

    totals = board.totals
    assert totals.dispatched == 8
    assert totals.running == 1
    assert totals.pending == 2  # now, whatever the window
    assert totals.oldest_pending_age == 2 * dt.timedelta(hours=2)
    assert totals.failures == 1
    assert (totals.changed, totals.missing, totals.checked) == (1, 1, 8 - 1)  # the pending one is not checked
    assert totals.lag.max == 4 * SECOND
    assert [d.drift for d in board.recent_stale] == [Drift.MISSING, Drift.CHANGED]


def test_dispatches_without_objects_are_left_out_of_the_shares(admin_client: Client, question: Question) -> None:
    now = timezone.now()
    make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"], enqueued_at=now - MINUTE)
    make_dispatch(question, drift=Drift.UNCHANGED, enqueued_at=now - MINUTE)
    for _ in range(6):  # as the recorder writes them: no refs, "unchanged"
        make_dispatch(task_name="tests.testapp.tasks.count_words", enqueued_at=now - MINUTE)
    make_dispatch(task_name="tests.testapp.tasks.count_words", state=State.PENDING, enqueued_at=now - MINUTE)

    board = queries.collect(queries.WINDOWS["1h"], now=now)
    html = admin_client.get(DASHBOARD).content.decode()

    assert (board.totals.checked, board.totals.changed, board.totals.changed_rate) == (2, 1, 50.0)
    counts = {row.task_name: row.figures for row in board.tasks}
    assert counts["tests.testapp.tasks.count_words"].checked == 0
    assert counts["tests.testapp.tasks.count_words"].changed_rate is None  # shown as "—", not "0.0 %"
    assert metric(html, "changed") == "50.0 %"
    assert "changed (1 of 2 checked)" in html
    assert board.pending.judged == 0  # the waiting one has no objects: nothing to judge


def test_scheduled_work_is_not_backlog(admin_client: Client, question: Question) -> None:
    now = timezone.now()
    words, mail = "tests.testapp.tasks.count_words", "tests.testapp.tasks.notify_followers"
    make_dispatch(question, task_name=words, state=State.PENDING, enqueued_at=now - 30 * SECOND)
    # Enqueued long ago for 20 s ago: due for 20 s, not for 10 min.
    make_dispatch(question, task_name=words, state=State.RECEIVED, enqueued_at=now - 10 * MINUTE, eta=now - 20 * SECOND)
    # Scheduled: an ETA ahead, held by the broker or by a worker.
    make_dispatch(question, task_name=words, state=State.PENDING, enqueued_at=now - 54 * SECOND, eta=now + 5 * MINUTE)
    make_dispatch(question, task_name=mail, state=State.RECEIVED, enqueued_at=now - 2 * MINUTE, eta=now + MINUTE)

    board = queries.collect(queries.WINDOWS["1h"], now=now)

    totals = board.totals
    assert (totals.pending, totals.oldest_pending_age) == (2, 30 * SECOND)
    assert (totals.scheduled, totals.next_due) == (2, now + MINUTE)
    per_task = {row.task_name: row.figures for row in board.tasks}
    assert (per_task[words].pending, per_task[words].oldest_pending_age) == (2, 30 * SECOND)
    assert (per_task[words].scheduled, per_task[words].next_due) == (1, now + 5 * MINUTE)
    assert (per_task[mail].pending, per_task[mail].oldest_pending_age) == (0, None)
    assert (per_task[mail].scheduled, per_task[mail].next_due) == (1, now + MINUTE)

    html = admin_client.get(DASHBOARD).content.decode()
    assert metric(html, "pending") == "2"
    assert metric(html, "scheduled") == "2"
    next_due = timezone.localtime(now + MINUTE).strftime("%H:%M:%S")
    assert f">{next_due}</time>" in html[html.index('data-metric="scheduled"') :]
    row = html[html.index(f'data-task="{words}"') :]
    row = row[: row.index("</tr>")]
    assert re.search(r'data-cell="pending">2 <span[^>]*>oldest \d\d s</span>', row)  # about 30 s, not 10 min
    assert re.search(r'data-cell="scheduled">1 <span[^>]*>next [\d:]{8}</span>', row)


def test_lag_percentiles_interpolate_like_percentile_cont(question: Question) -> None:
    now = timezone.now()
    for seconds in range(1, 11):
        make_dispatch(question, enqueued_at=now - MINUTE, lag=seconds * SECOND)
    make_dispatch(question, state=State.PENDING, enqueued_at=now - MINUTE)  # no lag: not counted

    stats = queries.lag_stats(Dispatch.objects.all())

    assert stats.p50 == dt.timedelta(seconds=5.5)
    assert stats.p95 == dt.timedelta(seconds=9.55)
    assert stats.max == 10 * SECOND
    assert queries.lag_stats(Dispatch.objects.filter(pk__lt=0)) == queries.LagStats()


def test_window_figures_in_one_pass_equal_the_figures_asked_one_by_one(question: Question) -> None:
    """On PostgreSQL the totals and the per-task rows come from one GROUPING SETS query: same numbers."""
    now = timezone.now()
    names = ["tests.testapp.tasks.count_words", "tests.testapp.tasks.flag_comment", "tests.testapp.tasks.read_body"]
    for n in range(24):
        make_dispatch(
            question,
            task_name=names[n % 3],
            state=[State.SUCCESS, State.FAILURE, State.PENDING, State.STARTED][n % 4],
            drift=[Drift.UNCHANGED, Drift.CHANGED, Drift.MISSING, Drift.PENDING][n % 4 if n % 5 else 3],
            enqueued_at=now - n * MINUTE,
            lag=None if n % 7 == 0 else (n * n % 11 + 1) * SECOND,
        )
    window_qs = Dispatch.objects.filter(enqueued_at__gte=now - dt.timedelta(hours=1))
    grouped = queries.grouped_by_task(window_qs)
    if has_percentile_cont(window_qs):
        assert queries.with_totals(grouped) is not None  # the rewrite still applies to what Django compiles

    totals, lag, by_task = queries.window_figures(window_qs)

    assert {key: totals[key] for key in queries.window_aggregates()} == window_qs.aggregate(
        **queries.window_aggregates()
    )
    assert lag == queries.lag_stats(window_qs)
    assert lag.p50 is not None
    assert lag.p95 is not None
    assert lag.p50 < lag.p95
    assert by_task == {row["task_name"]: row for row in grouped}
    assert sorted(by_task) == names


def test_per_task_table_and_its_sorting(admin_client: Client, question: Question) -> None:
    now = timezone.now()
    for _ in range(3):
        make_dispatch(question, task_name="tests.testapp.tasks.count_words", enqueued_at=now - MINUTE)
    make_dispatch(question, task_name="tests.testapp.tasks.flag_comment", state=State.FAILURE, enqueued_at=now - MINUTE)
    make_dispatch(question, task_name="tests.testapp.tasks.flag_comment", state=State.FAILURE, enqueued_at=now - MINUTE)
    make_dispatch(question, task_name="tests.testapp.tasks.notify_followers", lag=dt.timedelta(minutes=3))

    def order(**params: str) -> list[str]:
        html = admin_client.get(DASHBOARD, params).content.decode()
        return re.findall(r'class="taskops-task-row" data-task="([^"]+)"', html)

    assert order() == [
        "tests.testapp.tasks.count_words",
        "tests.testapp.tasks.flag_comment",
        "tests.testapp.tasks.notify_followers",
    ]
    assert order(sort="-failures")[0] == "tests.testapp.tasks.flag_comment"
    assert order(sort="-max")[0] == "tests.testapp.tasks.notify_followers"
    assert order(sort="task") == sorted(order())
    assert order(sort="nonsense") == order()
    html = admin_client.get(DASHBOARD, {"sort": "-failures", "window": "15m"}).content.decode()
    assert 'href="?window=15m&amp;sort=failures"' in html  # clicking again flips the direction


def test_window_choice(admin_client: Client, question: Question) -> None:
    make_dispatch(question, enqueued_at=timezone.now() - 30 * MINUTE)

    assert metric(admin_client.get(DASHBOARD, {"window": "15m"}).content.decode(), "dispatched") == "0"
    assert metric(admin_client.get(DASHBOARD, {"window": "1h"}).content.decode(), "dispatched") == "1"
    html = admin_client.get(DASHBOARD, {"window": "24h"}).content.decode()
    assert metric(html, "dispatched") == "1"
    assert 'class="selected" aria-current="true">24 h</a>' in html


def test_charts_bucket_the_window(question: Question) -> None:
    now = timezone.now().replace(second=30)
    for _ in range(4):
        make_dispatch(question, enqueued_at=now - 10 * MINUTE, lag=2 * SECOND)
    make_dispatch(question, enqueued_at=now - 5 * MINUTE, lag=6 * SECOND)

    board = queries.collect(queries.WINDOWS["15m"], now=now)

    heights = [bar.height for bar in board.throughput.bars]
    assert len(heights) == 16  # one bar a minute, both ends included
    assert heights.index(max(heights)) == 5  # the busiest minute, 10 min ago
    assert sum(1 for height in heights if height > 0) == 2
    assert board.throughput.peak_label == "4 per min"
    assert board.lag_chart.peak_label == "6.00 s"
    assert len(board.lag_chart.line.split()) == 2  # averages only where something ran


def test_full_page_polls_with_htmx_and_pauses_when_hidden(admin_client: Client) -> None:
    html = admin_client.get(DASHBOARD).content.decode()

    assert re.search(r'<script src="/static/django_htmx/htmx[-.\w]*\.js"', html)
    assert "hx-trigger=\"every 3s [document.visibilityState === 'visible']" in html
    assert 'hx-get="/admin/taskops/dispatch/dashboard/"' in html
    assert "<svg" in html


def test_htmx_request_gets_only_the_panel(admin_client: Client, question: Question) -> None:
    make_dispatch(question)

    response = admin_client.get(DASHBOARD, {"window": "15m"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="taskops-panel"')
    assert "<html" not in html
    assert 'hx-get="/admin/taskops/dispatch/dashboard/?window=15m"' in html
    assert metric(html, "dispatched") == "1"


def test_pending_panel_judges_waiting_work_with_the_staleness_judge(admin_client: Client, question: Question) -> None:
    make_dispatch(question, state=State.PENDING)

    html = admin_client.get(DASHBOARD).content.decode()

    assert "Pending work that would run on stale data" in html
    assert "1 pending dispatch judged: none would run on stale data." in html


@attrs.frozen
class FakeVerdict:
    dispatch: Dispatch
    drift: str
    refs: list[tuple[ObjectRef, str, list[str]]]


def test_pending_panel_shows_stale_verdicts(
    admin_client: Client, question: Question, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = make_dispatch(question, state=State.PENDING, task_name="tests.testapp.tasks.notify_followers")
    fresh = make_dispatch(question, state=State.PENDING)
    make_dispatch(question, state=State.SUCCESS)
    judged: list[set[int]] = []

    def judge_pending(dispatches: QuerySet[Dispatch]) -> list[Any]:
        judged.append({d.pk for d in dispatches})
        ref = stale.refs.get()
        return [
            FakeVerdict(stale, Drift.CHANGED, [(ref, Drift.CHANGED, ["title"])]),
            FakeVerdict(fresh, Drift.UNCHANGED, []),
        ]

    monkeypatch.setattr(queries, "judge_pending", judge_pending)

    html = admin_client.get(DASHBOARD).content.decode()

    assert judged == [{stale.pk, fresh.pk}]
    panel = html[html.index('id="taskops-pending-stale"') :]
    assert reverse("admin:taskops_dispatch_change", args=[stale.pk]) in panel
    assert reverse("admin:taskops_dispatch_change", args=[fresh.pk]) not in panel
    assert "title" in panel


def test_dashboard_queries_do_not_grow_with_rows(
    admin_client: Client, question: Question, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    tasks = [
        "tests.testapp.tasks.count_words",
        "tests.testapp.tasks.flag_comment",
        "tests.testapp.tasks.moderate_answer",
    ]
    for index in range(60):
        make_dispatch(
            question,
            task_name=tasks[index % 3],
            drift=Drift.CHANGED if index % 4 == 0 else Drift.UNCHANGED,
            changed_fields=["body"],
            enqueued_at=now - index * SECOND,
        )
    admin_client.get(DASHBOARD)

    # session, user, totals, "now", per task (+2 per task for percentiles off PostgreSQL),
    # charts, lag stats (3 off PostgreSQL), recent stale + refs
    with django_assert_max_num_queries(20):
        admin_client.get(DASHBOARD)
