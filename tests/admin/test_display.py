"""How dispatches look: drift of dispatches and refs, long labels cut with their whole text kept."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from taskops.admin import display
from taskops.admin.links import ObjectLink
from taskops.models import Drift, State
from tests.admin.helpers import change_url
from tests.factories import make_dispatch
from tests.testapp.models import Question

pytestmark = pytest.mark.django_db

STARTED = dt.datetime(2026, 3, 4, 9, 24, 32, tzinfo=dt.UTC)


def test_a_ref_left_pending_at_start_says_not_checked_and_nothing_says_checked(
    admin_client: Client, question: Question
) -> None:
    """The judge leaves a ref ``pending`` when it compared nothing (the task stopped before reading its
    rows, or no snapshot was taken); the attempt's start time on it is not a check."""
    lag = dt.timedelta(milliseconds=250)
    dispatch = make_dispatch(question, state=State.FAILURE, drift=Drift.PENDING, enqueued_at=STARTED - lag, lag=lag)
    ref = dispatch.refs.get()
    assert (ref.drift, ref.checked_at) == (Drift.PENDING, STARTED)  # as the recorder leaves it

    html = admin_client.get(change_url(dispatch)).content.decode()
    rendered = str(display.ref_drift(ref))

    assert "not checked" in rendered
    assert "checked " not in rendered.replace("not checked", "")
    refs_table = html[html.index('id="taskops-refs"') : html.index('id="taskops-result"')]
    assert "not checked" in refs_table
    assert timezone.localtime(STARTED).strftime("%H:%M:%S") not in refs_table


def test_a_judged_ref_says_when_it_was_checked(question: Question) -> None:
    dispatch = make_dispatch(question, drift=Drift.CHANGED, changed_fields=["body"])
    ref = dispatch.refs.get()

    rendered = str(display.ref_drift(ref))

    assert "changed</span>" in rendered
    assert f"checked {timezone.localtime(ref.checked_at).strftime('%H:%M:%S')}" in rendered


@pytest.mark.parametrize("drift", [Drift.UNCHANGED, Drift.PENDING])
def test_a_dispatch_without_objects_has_no_drift_to_show(drift: Drift) -> None:
    # The recorder writes "unchanged" once such a dispatch started, "pending" before: nothing to judge either way.
    dispatch = make_dispatch(task_name="tests.testapp.tasks.count_words", drift=drift)

    rendered = str(display.dispatch_drift(dispatch))

    assert "no objects" in rendered
    assert "unchanged" not in rendered
    assert "not checked" not in rendered


def test_a_dispatch_with_objects_shows_its_drift(question: Question) -> None:
    dispatch = make_dispatch(question, drift=Drift.MISSING, likely_race=True)
    assert "likely race" in str(display.dispatch_drift(dispatch))


def test_long_text_is_cut_by_css_with_its_whole_text_in_the_title() -> None:
    host = "celery@ip-10-0-12-34.eu-west-1.compute.internal<b>"

    rendered = str(display.clipped(host))

    escaped = "celery@ip-10-0-12-34.eu-west-1.compute.internal&lt;b&gt;"
    assert rendered == f'<span class="taskops-clip" title="{escaped}">{escaped}</span>'
    assert str(display.clipped("")) == "\u2014"


def test_a_dotted_name_may_wrap_after_dots_and_underscores_only() -> None:
    assert str(display.dotted_name("proj.tasks.send_mail<x>")) == "proj.<wbr>tasks.<wbr>send_<wbr>mail&lt;x&gt;"


def test_a_ref_line_keeps_the_whole_label_and_str_in_titles(question: Question) -> None:
    content_type = ContentType.objects.get_for_model(question)
    link = ObjectLink(
        label="Tag #0f0e-UUID",
        text="first words…",
        url="/tag/1/",
        history_url="/history/",
        visible=True,
        full_text="The whole str() of the object",
    )

    rendered = str(display.ref_line(link))

    assert 'title="Tag #0f0e-UUID"><a href="/tag/1/">Tag #0f0e-UUID</a></span>' in rendered
    assert 'title="The whole str() of the object">The whole str() of the object</span>' in rendered
    assert 'href="/history/"' in rendered
    unlinked = str(display.ref_line(ObjectLink("Book #1", "", None, f"/h/{content_type.pk}/")))
    assert "<a href" not in unlinked.split("taskops-history")[0]
    assert "taskops-repr" not in unlinked
