"""Reading stored dispatches for a replay: why a call will be skipped, and its arguments decoded.

The confirmation before a replay (:func:`replay_skips`) and the publish
(``publish.replay_calls``) read a dispatch the same way here, so the page
counts what the publish will skip: a task not allowed, arguments the
publisher redacted, a keyword argument ``TASKOPS["REDACT_KWARGS"]`` kept out
of the record, arguments that no longer decode, referenced rows that are
gone. Only a task whose signature changed since is left for the publish to
find (it needs the rows themselves).

Cost of :func:`replay_skips`: one query that streams the selection
(``CHUNK`` rows at a time: a "select all" over a million rows is never held
at once), and per chunk one query per referenced model, for pks only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import islice
from typing import Any

import attrs
from celery import current_app
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from taskops.models import Dispatch
from taskops.redispatch import policy
from taskops.wire import CodecError, ModelRef, collect_refs, json_pk, loads
from taskops.wire.envelopes import REDACTED_ERROR

#: Dispatches read per chunk when counting the skips of a selection.
CHUNK = 2_000


class Skip(models.TextChoices):
    """Why a call of a replay is not published (the rest of the re-dispatch goes on)."""

    SOURCE_GONE = "source gone", _("the source dispatch was deleted")
    TASK_UNKNOWN = "task unknown", _("the task is not registered")
    TASK_NOT_ALLOWED = "task not allowed", _("the task may not be re-dispatched")
    REDACTED = "redacted", _("the publisher redacted the arguments")
    KWARG_REDACTED = "kwarg redacted", _("a keyword argument was redacted (TASKOPS['REDACT_KWARGS'])")
    UNDECODABLE = "arguments undecodable", _("the stored arguments can no longer be decoded")
    OBJECTS_GONE = "objects gone", _("referenced objects no longer exist")
    ARGUMENTS_UNFIT = "arguments unfit", _("the stored arguments no longer fit the task's signature")


def skip_for_task(name: str) -> Skip | None:
    """Why a call of task ``name`` cannot be replayed, or None."""
    task = current_app.tasks.get(name)
    if task is None:
        return Skip.TASK_UNKNOWN
    return None if policy.task_allowed(task) else Skip.TASK_NOT_ALLOWED


@attrs.frozen
class Skipped:
    """A call that will not be published: why, and what exactly (for the item's note)."""

    why: Skip
    detail: str = ""

    @property
    def note(self) -> str:
        return f"{self.why.value}: {self.detail}" if self.detail else str(self.why.value)


@attrs.frozen
class Stored:
    """A dispatch's stored arguments, decoded (placeholders for its objects), and the refs among them."""

    args: Any
    kwargs: Any
    refs: frozenset[ModelRef]

    def gone(self, existing: Iterable[ModelRef]) -> list[str]:
        """Its refs that are not among ``existing``, as text, in order."""
        return sorted(str(ref) for ref in self.refs.difference(existing))


def read_stored(task_name: str, redacted: bool, args: str, kwargs: str) -> Stored | Skipped:
    """A stored dispatch's arguments, ready to replay, or why it cannot be replayed."""
    why = skip_for_task(task_name) or (Skip.REDACTED if redacted else None)
    if why is not None:
        return Skipped(why)
    refs: set[ModelRef] = set()
    try:
        decoded_args, decoded_kwargs = loads(args or "[]"), loads(kwargs or "{}")
        collect_refs(decoded_args, refs, root="args")
        collect_refs(decoded_kwargs, refs, root="kwargs")
    except CodecError as error:
        if str(error).endswith(REDACTED_ERROR):  # the record kept a marker, never the value: nothing to send
            return Skipped(Skip.KWARG_REDACTED, str(error).removesuffix(f": {REDACTED_ERROR}"))
        return Skipped(Skip.UNDECODABLE, str(error)[:200])
    except ValueError as error:  # not JSON: a row written by hand
        return Skipped(Skip.UNDECODABLE, str(error)[:200])
    return Stored(decoded_args, decoded_kwargs, frozenset(refs))


def existing_refs(refs: Iterable[ModelRef]) -> set[ModelRef]:
    """The refs whose rows exist: one query per model, for pks only."""
    by_label: dict[str, set[Any]] = defaultdict(set)
    for ref in refs:
        by_label[ref.label].add(ref.pk)
    found: set[ModelRef] = set()
    for label, pks in by_label.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        field = model._meta.pk
        assert field is not None
        wanted: dict[Any, Any] = {}
        for pk in pks:
            try:
                wanted[json_pk(field.to_python(pk))] = pk
            except ValidationError:
                continue
        rows = model._default_manager.filter(pk__in=list(wanted)).order_by().values_list("pk", flat=True)
        found.update(ModelRef(label, wanted[json_pk(pk)]) for pk in rows if json_pk(pk) in wanted)
    return found


def replay_skips(dispatches: QuerySet[Dispatch]) -> dict[str, int]:
    """Calls of a replay that will be skipped, by reason, over the whole selection, a chunk at a time."""
    skips: Counter[str] = Counter()
    rows = dispatches.order_by("pk").values_list("task_name", "redacted", "args", "kwargs").iterator(chunk_size=CHUNK)
    while chunk := list(islice(rows, CHUNK)):
        readable: list[Stored] = []
        for row in chunk:
            read = read_stored(*row)
            if isinstance(read, Skipped):
                skips[read.why.value] += 1
            else:
                readable.append(read)
        existing = existing_refs(ref for stored in readable for ref in stored.refs)
        skips[Skip.OBJECTS_GONE.value] += sum(1 for stored in readable if stored.gone(existing))
    return {why: calls for why, calls in skips.items() if calls}
