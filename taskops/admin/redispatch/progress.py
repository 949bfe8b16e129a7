"""What a re-dispatch's page shows: how far it got, what was skipped and why, each call and its new dispatch.

What it shows of the objects (an item's target) follows ``Visibility``
(through ``Linker``): their content type and pk to everyone, their own admin
page to users who may view their model. Cost, for a page of items: the
items (a count and a page), the new dispatches (one query by task id), the
source dispatches of a replay (one), the skipped calls by note (one, when
some were).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
from django.apps import apps
from django.contrib.admin import AdminSite
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Page, Paginator
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from taskops.admin.links import Linker
from taskops.models import Dispatch, Redispatch, RedispatchItem

#: Outcomes after which nothing moves by itself (a stopped one waits for "resume").
SETTLED = frozenset({Redispatch.Outcome.DONE, Redispatch.Outcome.PARTIAL, Redispatch.Outcome.FAILED})
#: How long a finished re-dispatch's page waits for the recorder to write its new dispatches.
RECORDING_GRACE = dt.timedelta(seconds=10)
#: Objects named in an item that holds a list (one call with the list) before "and N more".
NAMED_OBJECTS = 3


@attrs.frozen
class Progress:
    """How far a re-dispatch got, and whether its page has anything left to wait for."""

    done: int
    total: int
    #: Nothing more moves by itself, and the page shows the new dispatches (or stopped waiting for them).
    settled: bool

    @property
    def percent(self) -> int:
        """Published and skipped, of all calls (a re-dispatch of nothing is complete)."""
        return 100 if not self.total else min(100, self.done * 100 // self.total)


def progress_of(redispatch: Redispatch, rows: list[ItemRow], stalled: bool = False) -> Progress:
    """Settled once its outcome is, and the page's published calls have their rows (the recorder writes them
    just behind the publish), or ``RECORDING_GRACE`` after it finished (recording may be off). A stalled one
    (no progress for ``REDISPATCH_STALLED_AFTER``) is settled too: nothing moves until someone resumes it."""
    if stalled:
        return Progress(redispatch.done, redispatch.total, True)
    waiting = any(row.dispatch is None and row.item.state == RedispatchItem.State.PUBLISHED for row in rows)
    finished = redispatch.finished_at
    grace_over = finished is None or timezone.now() - finished > RECORDING_GRACE
    return Progress(redispatch.done, redispatch.total, redispatch.outcome in SETTLED and (not waiting or grace_over))


@attrs.frozen
class ItemRow:
    """One call: what it was for, its state and note, and the dispatch it became."""

    item: RedispatchItem
    target: SafeString
    dispatch: Dispatch | None
    #: The new dispatch's page (None: not recorded yet, or not on this site).
    dispatch_url: str | None


def items_page(redispatch: Redispatch, per_page: int, number: str | None) -> Page[RedispatchItem]:
    items = redispatch.items.order_by("position")
    return Paginator(items, per_page).get_page(number)


class ProgressRows:
    """The rows of a re-dispatch's page, linked on this admin site (``RedispatchAdmin`` has them; override them
    there)."""

    admin_site: AdminSite

    def item_rows(self, redispatch: Redispatch, items: list[RedispatchItem], linker: Linker) -> list[ItemRow]:
        """The page's items with their targets (as the user may see them) and their new dispatches."""
        dispatches = {d.task_id: d for d in Dispatch.objects.filter(task_id__in=[item.task_id for item in items])}
        if redispatch.kind == Redispatch.Kind.REPLAY:
            targets = self.replay_targets(items)
        else:
            targets = object_targets(redispatch, items, linker)
        rows = []
        for item in items:
            dispatch = dispatches.get(item.task_id)
            url = linker.model_change_url(Dispatch, dispatch.pk) if dispatch is not None else None
            rows.append(ItemRow(item, targets[item.pk], dispatch, url))
        return rows

    def replay_targets(self, items: list[RedispatchItem]) -> dict[int, SafeString]:
        """Each item's source dispatch, linked on this admin site (a deleted one by its id)."""
        sources = Dispatch.objects.in_bulk([int(item.target) for item in items if item.target.isdigit()])
        found = {}
        for item in items:
            source = sources.get(int(item.target)) if item.target.isdigit() else None
            if source is None:
                found[item.pk] = format_html(
                    '{} #{} <span class="taskops-quiet">({})</span>', _("Dispatch"), item.target, _("deleted")
                )
            else:
                url = reverse(f"{self.admin_site.name}:taskops_dispatch_change", args=[source.pk])
                found[item.pk] = format_html(
                    '<a href="{}">{}</a> <span class="taskops-quiet">{}</span>',
                    url,
                    source.task_name,
                    source.task_id[:8],
                )
        return found


def object_targets(redispatch: Redispatch, items: list[RedispatchItem], linker: Linker) -> dict[int, SafeString]:
    """Each item's object (or objects, for one call with a list), linked as the user may see them."""
    try:
        content_type = ContentType.objects.get_for_model(apps.get_model(redispatch.plan.get("model", "")))
    except (LookupError, ValueError):
        return {item.pk: format_html("{}", item.target) for item in items}
    found = {}
    for item in items:
        pks = [str(pk) for pk in json.loads(item.target)] if redispatch.plan.get("many") else [item.target]
        links = format_html_join(", ", "{}", ((linker.link(content_type, pk).html(),) for pk in pks[:NAMED_OBJECTS]))
        more = len(pks) - NAMED_OBJECTS
        found[item.pk] = format_html("{}{}", links, _(" and %(count)s more") % {"count": more} if more > 0 else "")
    return found


def plan_summary(redispatch: Redispatch) -> dict[str, Any]:
    """The options the calls were published with, without the empty ones."""
    return {name: value for name, value in (redispatch.options or {}).items() if value not in (None, "")}
