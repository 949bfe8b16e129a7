"""How dispatches look in the admin: durations, moments, state and drift badges, long labels.

Everything here returns escaped HTML (``format_html``) or plain text and
issues no query. Badges are built once per value and language (a page shows
hundreds of them): a dictionary lookup each after the first.

Labels come from real data (UUID keys, 200-character ``__str__``, hostnames,
dotted task names): each is either allowed to wrap where it reads well, or
cut on one line by CSS (``taskops-clip``: an ellipsis) with the whole text in
its ``title``. Nothing is cut silently.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from taskops.admin.links import ObjectLink
from taskops.models import Dispatch, Drift, ObjectRef, State


def format_duration(value: dt.timedelta | None) -> str:
    """A duration as an operator reads it: "0.42 s", "12 s", "3 min 5 s", "2 h 3 min"."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.2f} s"
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


#: CSS class of each state's badge (colours live in taskops/admin.css).
STATE_TONES: dict[str, str] = {
    State.PENDING: "idle",
    State.RECEIVED: "idle",
    State.STARTED: "busy",
    State.RETRY: "warn",
    State.SUCCESS: "ok",
    State.FAILURE: "bad",
    State.REVOKED: "bad",
    State.REJECTED: "bad",
    State.IGNORED: "idle",
    State.SKIPPED: "warn",
}

DRIFT_TONES: dict[str, str] = {
    Drift.PENDING: "idle",
    Drift.UNCHANGED: "ok",
    Drift.CHANGED: "warn",
    Drift.MISSING: "bad",
}


def state_badge(state: str) -> SafeString:
    """A coloured label for a task state (built once per state and language: pages show hundreds)."""
    return _state_badge(state, get_language())


@functools.lru_cache(maxsize=256)
def _state_badge(state: str, language: str | None) -> SafeString:
    label = State(state).label if state in State.values else state
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', STATE_TONES.get(state, "idle"), label)


def format_time(value: dt.datetime | None) -> str:
    """A moment to the second in the current time zone (cheaper than the ``date`` filter, row after row)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def moment_html(value: dt.datetime | None) -> SafeString:
    """A moment as date and time that may wrap between the two, never inside either (narrow columns)."""
    if value is None:
        return mark_safe("—")
    local = timezone.localtime(value)
    return format_html(
        '<span class="taskops-nowrap">{}</span> <span class="taskops-nowrap">{}</span>',
        local.strftime("%Y-%m-%d"),
        local.strftime("%H:%M:%S"),
    )


def dotted_name(name: str) -> SafeString:
    """A dotted name (a task's) that may wrap after a dot or an underscore, never inside a word."""
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in re.split(r"(?<=[._])", name)))


def clipped(text: str) -> SafeString:
    """Text that may be long (a hostname, an argument path): one line, cut by an ellipsis, whole in the title."""
    if not text:
        return mark_safe("—")
    return format_html('<span class="taskops-clip" title="{}">{}</span>', text, text)


def ref_line(link: ObjectLink, *, matched: bool = False) -> SafeString:
    """An object on one line: its label and its ``str()`` (to users who may view it) each cut by an
    ellipsis (whole in the title), then the link to its task history, always visible; ``matched``:
    what a search found."""
    full_text = link.full_text
    label = format_html('<a href="{}">{}</a>', link.url, link.label) if link.url else link.label
    text = (
        format_html('<span class="taskops-clip taskops-repr" title="{}">{}</span>', full_text, full_text)
        if full_text
        else ""
    )
    return format_html(
        '<span class="taskops-ref-line{}"><span class="taskops-clip taskops-ref-label" title="{}">{}</span>{}'
        '<a class="taskops-history" href="{}" title="{}">⟲</a></span>',
        " taskops-match" if matched else "",
        link.label,
        label,
        text,
        link.history_url,
        _("Task history"),
    )


def dispatch_drift(dispatch: Dispatch, changed_fields: Iterable[str] = ()) -> SafeString:
    """A dispatch's drift; "no objects" when its arguments referenced none: there was nothing to judge."""
    if not dispatch.ref_count:
        return no_objects()
    return drift_badge(dispatch.drift, likely_race=dispatch.likely_race, changed_fields=changed_fields)


def no_objects() -> SafeString:
    """What stands for a drift where the arguments referenced no object."""
    return format_html('<span class="taskops-quiet taskops-no-objects">{}</span>', _("no objects"))


def ref_drift(ref: ObjectRef) -> SafeString:
    """A ref's drift, and when it was judged.

    Only a verdict (unchanged, changed, missing) has a time: a ref still
    ``pending`` was not compared, even if the attempt that left it so started
    at some time (the task stopped before reading its rows, or no snapshot was
    taken to compare with). It says "not checked", and nothing says "checked".
    """
    badge = drift_badge(ref.drift, likely_race=ref.likely_race, changed_fields=ref.changed_fields or ())
    if ref.drift == Drift.PENDING or ref.checked_at is None:
        return badge
    checked = timezone.localtime(ref.checked_at).strftime("%H:%M:%S")
    return format_html('{}<br><span class="taskops-quiet">{} {}</span>', badge, _("checked"), checked)


def drift_badge(drift: str, *, likely_race: bool = False, changed_fields: Iterable[str] = ()) -> SafeString:
    """Drift as a label, with the changed fields or the race named."""
    return _drift_badge(drift, likely_race, tuple(sorted({str(name) for name in changed_fields})), get_language())


@functools.lru_cache(maxsize=1024)
def _drift_badge(drift: str, likely_race: bool, fields: tuple[str, ...], language: str | None) -> SafeString:
    if likely_race:
        return format_html('<span class="taskops-badge taskops-bad">{}</span>', _("likely race"))
    if drift == Drift.PENDING:
        return format_html('<span class="taskops-badge taskops-idle">{}</span>', _("not checked"))
    label = Drift(drift).label.lower() if drift in Drift.values else drift
    if drift == Drift.CHANGED and fields:
        shown = ", ".join(fields[:3]) + (", …" if len(fields) > 3 else "")
        return format_html(
            '<span class="taskops-badge taskops-warn">{}</span> <span class="taskops-fields">{}</span>', label, shown
        )
    return format_html('<span class="taskops-badge taskops-{}">{}</span>', DRIFT_TONES.get(drift, "idle"), label)
