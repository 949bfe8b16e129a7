"""How dispatches look in the admin: durations, moments, state and drift badges.

Everything here returns escaped HTML (``format_html``) or plain text and
issues no query. Badges are built once per value and language (a page shows
hundreds of them): a dictionary lookup each after the first.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from taskops.models import Drift, State


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
