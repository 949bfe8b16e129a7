"""Template tags of taskops' admin pages, and the "Task history" object tool.

``{% taskops_history_link %}`` is what ``admin/change_form_object_tools.html``
adds to every registered model's change form; a project that overrides that
template itself can add the tag to its own copy.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from taskops.admin import display
from taskops.admin.links import Linker
from taskops.models import Alert, AlertRule, Dispatch

register = template.Library()

#: taskops' own models, which tasks do not take: no "Task history" on their pages.
WITHOUT_HISTORY = (Dispatch, Alert, AlertRule)


def can_view_dispatches(user: Any) -> bool:
    """The permission every taskops page asks for."""
    return bool(user.has_perm("taskops.view_dispatch") or user.has_perm("taskops.change_dispatch"))


@register.simple_tag(takes_context=True)
def taskops_history_link(context: template.Context) -> SafeString | str:
    """An object-tools ``<li>`` linking to the object's task history, for users who may see it."""
    request = context.get("request")
    original = context.get("original")
    content_type_id = context.get("content_type_id")
    if request is None or original is None or content_type_id is None or isinstance(original, WITHOUT_HISTORY):
        return ""
    if not can_view_dispatches(request.user):
        return ""
    try:
        url = reverse(
            "admin:taskops_dispatch_object_history",
            args=[content_type_id, quote(original.pk)],
            current_app=getattr(request, "current_app", None),
        )
    except NoReverseMatch:  # DispatchAdmin is not registered on this site
        return ""
    return format_html('<li><a href="{}" class="taskops-historylink">{}</a></li>', url, _("Task history"))


@register.simple_tag(takes_context=True)
def taskops_dashboard_link(context: template.Context) -> str:
    """The dashboard's URL for users who may see it, else an empty string."""
    request = context.get("request")
    if request is None or not can_view_dispatches(request.user):
        return ""
    try:
        return reverse("admin:taskops_dispatch_dashboard", current_app=getattr(request, "current_app", None))
    except NoReverseMatch:
        return ""


@register.filter
def duration(value: dt.timedelta | None) -> str:
    """``{{ dispatch.lag|duration }}``: "0.42 s", "3 min 5 s"."""
    return display.format_duration(value)


@register.filter
def percent(value: float | None) -> str:
    """A rate as "12.5 %", or "—" when there was nothing to rate."""
    return "—" if value is None else f"{value:.1f} %"


@register.filter
def state_badge(state: str) -> SafeString:
    """``{{ dispatch.state|state_badge }}``: the state as a coloured label."""
    return display.state_badge(state)


@register.simple_tag
def drift_badge(drift: str, likely_race: bool = False, changed_fields: Any = ()) -> SafeString:
    """``{% drift_badge ref.drift ref.likely_race ref.changed_fields %}``: drift as a label, fields named."""
    return display.drift_badge(drift, likely_race=likely_race, changed_fields=changed_fields or ())


@register.simple_tag
def ref_html(linker: Linker, ref: Any) -> SafeString:
    """A ref on one line, "Question #42 - its str()", linked, cut by an ellipsis, with its history link."""
    return display.ref_line(linker.ref_link(ref))


# Display functions that are filters as they are: ``{{ ref|ref_drift }}`` (a ref's drift, and when it
# was judged), ``{{ dispatch|dispatch_drift }}`` ("no objects" when there was nothing to judge),
# ``{{ dispatch.worker|clip }}`` (one line, an ellipsis, the whole text in the title) and
# ``{{ dispatch.task_name|dotted }}`` (wraps after a dot).
register.filter("ref_drift", display.ref_drift)
register.filter("dispatch_drift", display.dispatch_drift)
register.filter("clip", display.clipped)
register.filter("dotted", display.dotted_name)
