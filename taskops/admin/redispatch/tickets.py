"""What the re-dispatch pages keep on the server between an operator's steps (``RedispatchTicket``).

- A **selection** made with "Run a task for the selected objects" on any
  model's changelist: its pks, read in chunks and kept in one row, so that a
  selection of ``REDISPATCH_MAX_CALLS`` rows works (no URL, nor a cookie
  session, holds 50,000 pks); the form names it by its token.
- A **confirmation**: what the operator previewed or was shown, used once.
  Using it deletes it in one statement: of two submits of the same page
  (a double click, a replayed request), one finds it and publishes; the
  other finds nothing and publishes nothing.

Tickets belong to one user and last ``LIFETIME``; a user's expired ones are
deleted when the next is issued. Each call costs one or two queries.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import attrs
from django.apps import apps
from django.db.models import Model, QuerySet
from django.utils import timezone

from taskops.admin.objects import NUL
from taskops.models import RedispatchTicket
from taskops.wire import json_pk

#: How long a selection or a confirmation may wait for the operator's next step.
LIFETIME = dt.timedelta(hours=12)
#: pks read per query when a selection is kept.
CHUNK = 2_000

Purpose = RedispatchTicket.Purpose


def issue(user: Any, purpose: Purpose, *, model: str = "", data: dict[str, Any] | None = None) -> str:
    """A new ticket's token (the user's expired tickets are deleted first)."""
    now = timezone.now()
    RedispatchTicket.objects.filter(user=user, created_at__lt=now - LIFETIME).delete()
    token = secrets.token_urlsafe(32)
    RedispatchTicket.objects.create(
        token=token, user=user, purpose=purpose, created_at=now, model=model, data=data or {}
    )
    return token


def find(user: Any, purpose: Purpose, token: str | None) -> RedispatchTicket | None:
    """The user's live ticket with this token, or None (unknown, expired, another user's, another purpose)."""
    if not token or len(token) > 64 or NUL in token:  # no token holds NUL, nor can a query compare one
        return None
    live = RedispatchTicket.objects.filter(created_at__gte=timezone.now() - LIFETIME)
    return live.filter(token=token, user=user, purpose=purpose).first()


def use(user: Any, purpose: Purpose, token: str | None) -> RedispatchTicket | None:
    """The ticket, deleted; None when there is none, or when a concurrent request used it first."""
    ticket = find(user, purpose, token)
    if ticket is None:
        return None
    deleted, _by_model = RedispatchTicket.objects.filter(pk=ticket.pk).delete()
    return ticket if deleted else None


@attrs.frozen
class Selection:
    """Objects chosen on a model's changelist, kept for the generic form."""

    token: str
    model: type[Model]
    #: The pks as text, in pk order.
    pks: list[str]

    @property
    def count(self) -> int:
        return len(self.pks)

    @property
    def label(self) -> str:
        """The model's plural name."""
        return str(self.model._meta.verbose_name_plural)


def keep_selection(user: Any, queryset: QuerySet[Any]) -> str:
    """Keep the rows of ``queryset`` (their pks, read ``CHUNK`` at a time) for the form; its token."""
    rows = queryset.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=CHUNK)
    pks = [str(json_pk(pk)) for pk in rows]
    return issue(user, Purpose.SELECTION, model=queryset.model._meta.label_lower, data={"pks": pks})


def find_selection(user: Any, token: str | None) -> Selection | None:
    """The user's selection with this token, or None."""
    ticket = find(user, Purpose.SELECTION, token)
    if ticket is None:
        return None
    try:
        model = apps.get_model(ticket.model)
    except (LookupError, ValueError):  # uninstalled since
        return None
    return Selection(ticket.token, model, [str(pk) for pk in ticket.data.get("pks", [])])
