"""Who may see what of other models' rows: the one policy every taskops page asks.

Whatever taskops shows about an object of another model (its ``str()``, now
or as a dispatch recorded it; a link to it; a field's value, at dispatch or
now; even whether it still exists) it shows only to users who may view that
model:

- a model registered on the admin site: its ``ModelAdmin.has_view_permission(request)``;
- any other installed model: the user's ``<app>.view_<model>`` or
  ``<app>.change_<model>`` permission (what Django's own
  ``has_view_permission`` asks for);
- a model that is no longer installed, or no request at all: nobody.

Everyone else sees the content type and the pk. Field values are shown only
for fields ``TASKOPS["SNAPSHOT_VALUE_FIELDS"]`` names and that
``TASKOPS["SENSITIVE_FIELDS"]`` does not match, whoever asks.

What a dispatch recorded about its own run (each ref's drift, the names of
the changed fields) belongs to the dispatch and is shown to whoever may view
dispatches; a judgement made now against the current rows (the dashboard's
pending panel) is the current rows' and follows the policy.

No query of its own: answers are cached per model for the request, and
Django caches the user's permissions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import attrs
from django.contrib.admin import AdminSite
from django.contrib.auth import get_permission_codename
from django.db.models import Model
from django.http import HttpRequest

from taskops.conf import taskops_settings
from taskops.models import Drift
from taskops.staleness import PendingVerdict, snapshot, worst

#: Drifts of pending work the dashboard reports as "would run on stale data".
STALE_DRIFTS = frozenset({Drift.CHANGED, Drift.MISSING})


@functools.lru_cache(maxsize=8)
def _sensitive_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE) if patterns else None


def is_sensitive(field_name: str) -> bool:
    """``TASKOPS["SENSITIVE_FIELDS"]`` matches the field's name (searched, case-insensitive)."""
    pattern = _sensitive_pattern(tuple(taskops_settings.SENSITIVE_FIELDS))
    return pattern is not None and pattern.search(field_name) is not None


class Visibility:
    """What one request may see of other models' rows (see the module docstring)."""

    def __init__(self, admin_site: AdminSite, request: HttpRequest | None) -> None:
        self.admin_site = admin_site
        self.request = request
        self._may_view: dict[type[Any], bool] = {}

    def may_view(self, model: type[Model] | None) -> bool:
        """The user may see ``model``'s rows: their ``str()``, values, existence."""
        if model is None or self.request is None:
            return False
        if model not in self._may_view:
            self._may_view[model] = self._permitted(model, self.request)
        return self._may_view[model]

    def _permitted(self, model: type[Model], request: HttpRequest) -> bool:
        model_admin = self.admin_site._registry.get(model)
        if model_admin is not None:
            return bool(model_admin.has_view_permission(request))
        opts = model._meta
        user = request.user
        return any(
            user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}") for action in ("view", "change")
        )

    def may_link(self, model: type[Model] | None) -> bool:
        """``model`` has a change page on this admin site and the user may view it."""
        return model is not None and model in self.admin_site._registry and self.may_view(model)

    def shown_fields(self, model: type[Model] | None) -> frozenset[str]:
        """The fields of ``model`` whose values (at dispatch and now) this user may see."""
        if model is None or not self.may_view(model):
            return frozenset()
        return frozenset(name for name in snapshot.value_fields(model) if not is_sensitive(name))

    def pending_verdicts(self, verdicts: Iterable[PendingVerdict]) -> list[PendingVerdict]:
        """Pending verdicts judged only on the refs this user may view.

        A verdict is about the rows as they are now: a ref the user may not
        view counts as not checked, so that neither a change nor a deletion
        of its row shows; verdicts no longer stale are left out.
        """
        shown = []
        for verdict in verdicts:
            refs = [
                (ref, drift, fields) if self.may_view(ref.content_type.model_class()) else (ref, Drift.PENDING, [])
                for ref, drift, fields in verdict.refs
            ]
            drift = worst(ref_drift for _ref, ref_drift, _fields in refs)
            if drift in STALE_DRIFTS:
                shown.append(attrs.evolve(verdict, drift=drift, refs=refs))
        return shown
