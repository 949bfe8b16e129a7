"""What taskops' pages accept from a URL or a form: text no database column can hold is a 400.

Filters, the search box, path parameters and posted forms all end up
compared with, or stored in, text columns. PostgreSQL refuses text with a NUL character ("text fields cannot
contain NUL"), at the query, as a 500; no row can hold one anyway. So every
taskops view refuses it first, with a 400 (``BadRequest``), before any
query. Anything else a user can type (long strings, ``%ff`` decoded as
U+FFFD, SQL-ish text, wrong types) is compared as given and simply matches
nothing, or is refused by Django's own checks (also a 400 on these pages).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.utils.translation import gettext as _

from taskops.admin.objects import NUL

if TYPE_CHECKING:
    AdminBase = admin.ModelAdmin[Any]
else:
    AdminBase = object


def reject_unstorable(texts: Iterable[str]) -> None:
    """``BadRequest`` when any of ``texts`` holds a character no text column can hold."""
    if any(NUL in text for text in texts):
        raise BadRequest(_("A parameter holds a NUL character."))


def check_parameters(request: HttpRequest) -> None:
    """Every name and value of the query string and of a posted form: ``BadRequest`` for text no column can hold.

    Posted values reach text and JSON columns too (a re-dispatch's ticket
    keeps the previewed form), and are compared with them (a ticket's token).
    """
    for data in (request.GET, request.POST) if request.method == "POST" else (request.GET,):
        reject_unstorable(data.keys())
        reject_unstorable(value for _name, values in data.lists() for value in values)


class CheckedChangelist(AdminBase):
    """A ``ModelAdmin`` mixin: its changelist refuses, with a 400, text no column can hold and parameters it
    cannot use (unknown fields, bad values, no such page), where Django would redirect to ``?e=1``."""

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        check_parameters(request)
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as error:
            raise BadRequest(_("The filters or the page of this list are not valid.")) from error
