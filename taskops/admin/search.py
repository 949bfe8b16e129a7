"""The changelist's search: an id, a task name, or an object.

What a term finds (the README's admin section says the same):

- a task id or a group id, whole, or its first 8 characters or more (the
  short id every changelist row shows);
- task names containing it (Celery's registry, matched in Python, not with
  ``LIKE`` over the table), or the exact name;
- ``app_label.model:pk``: dispatches that referenced that object, under its
  own model or under another model of its multi-table inheritance chain (a
  ``Restaurant`` is its parent ``Place`` with the same pk). The pk is the
  rest of the term; quote it when it holds spaces at its ends or starts with
  a quote: ``testapp.country:"a b"``, with ``\\"`` and ``\\\\`` inside;
- a bare pk (one word, or quoted): dispatches that referenced an object with
  that pk in any model the admin site shows.

A pk is compared in its model's own form: ``042`` finds ``42``, a UUID in
upper case or without dashes finds it as stored.

Every clause is served by an index: ``task_id`` (unique, with a pattern
index on PostgreSQL for the prefix: Django's ``_like`` index), ``group_id``
(one partial index of the rows that have one, a pattern index on
PostgreSQL), ``task_name``, and ``ObjectRef``'s ``(content_type, object_pk)``.
"""

from __future__ import annotations

import functools
import operator
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext as _

from taskops.admin.celery_names import registered_task_names
from taskops.admin.objects import NUL, same_row_models, stored_pk
from taskops.models import Dispatch, ObjectRef

#: ``app_label.model:pk``, e.g. ``demo.question:42``; the pk is the rest of the term.
OBJECT_TERM = re.compile(r"(?P<app>\w+)\.(?P<model>\w+):(?P<pk>.+)", re.DOTALL)
#: A quoted string: ``"a b"``, with ``\"`` and ``\\`` inside.
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
#: Characters of an id that find it by its start (the changelist shows 8).
MIN_ID_PREFIX = 8


@attrs.frozen
class ObjectQuery:
    """The refs an object search matches: (content type id, stored pk) pairs."""

    keys: frozenset[tuple[int, str]]

    def condition(self) -> Q:
        """Refs with one of the keys, one ``content_type IN (...) AND object_pk = ...`` per pk."""
        by_pk: dict[str, list[int]] = defaultdict(list)
        for content_type_id, object_pk in sorted(self.keys):
            by_pk[object_pk].append(content_type_id)
        return any_of(Q(content_type_id__in=ids, object_pk=object_pk) for object_pk, ids in by_pk.items())

    def matches(self, ref: ObjectRef) -> bool:
        """``ref`` is one of the objects searched for."""
        return (ref.content_type_id, ref.object_pk) in self.keys


def object_query(models: Iterable[type[Model]], pk_text: str) -> ObjectQuery:
    """Rows ``pk_text`` of ``models``, under any model of each one's inheritance chain."""
    family = {member for model in models for member in same_row_models(model)}
    content_types = ContentType.objects.get_for_models(*family) if family else {}
    keys = set()
    for model, content_type in content_types.items():
        object_pk = stored_pk(model, pk_text)
        if object_pk is not None:
            keys.add((content_type.pk, object_pk))
    return ObjectQuery(frozenset(keys))


@attrs.frozen
class SearchTerm:
    """A search term, understood: what it matches, and what to tell the user about it."""

    #: The term without its quotes; "" matches everything.
    text: str
    #: The objects it names (``app.model:pk``, or a bare pk); None: it names none.
    objects: ObjectQuery | None = None
    #: It names an object and nothing else (``app.model:pk``).
    objects_only: bool = False
    #: Why the term matches nothing, for the user ("" when it is fine).
    problem: str = ""


def unquote(text: str) -> str | None:
    """The content of a quoted string (``"a \\"b\\""`` -> ``a "b"``); None if ``text`` is not one."""
    match = QUOTED.fullmatch(text)
    return re.sub(r"\\(.)", r"\1", match[1], flags=re.DOTALL) if match else None


def parse_search(term: str, models: Iterable[type[Model]] = ()) -> SearchTerm:
    """Understand a search term (see the module docstring); ``models``: those a bare pk may name."""
    term = term.strip()
    if NUL in term:
        return SearchTerm(term, problem=_("The search term holds a NUL character."))
    match = OBJECT_TERM.fullmatch(term)
    if match:
        return parse_object_term(match["app"].lower(), match["model"].lower(), match["pk"])
    text = term
    if term.startswith('"'):
        unquoted = unquote(term)
        if unquoted is None:
            return SearchTerm(term, problem=_("The search term has a quote that is not closed."))
        text = unquoted
    if text and (text != term or not any(char.isspace() for char in text)):
        return SearchTerm(text, objects=object_query(models, text))
    return SearchTerm(text)


def parse_object_term(app_label: str, model_name: str, pk_text: str) -> SearchTerm:
    """``app_label.model:pk``: the refs to that row (under any model of its inheritance chain)."""
    label = f"{app_label}.{model_name}"
    if pk_text.startswith('"'):
        unquoted = unquote(pk_text)
        if unquoted is None:
            return SearchTerm(
                label, problem=_("The pk of %(label)s has a quote that is not closed.") % {"label": label}
            )
        pk_text = unquoted
    try:
        content_type = ContentType.objects.get_by_natural_key(app_label, model_name)
    except ContentType.DoesNotExist:
        return SearchTerm(label, problem=_("There is no model %(label)s.") % {"label": label})
    model = content_type.model_class()
    # A model uninstalled since: its refs keep the content type and the pk as typed.
    uninstalled = ObjectQuery(frozenset({(content_type.pk, pk_text)}))
    objects = object_query([model], pk_text) if model is not None else uninstalled
    if not objects.keys:
        problem = _("“%(pk)s” is not a pk that %(label)s can have.") % {"pk": pk_text, "label": label}
        return SearchTerm(pk_text, objects=objects, objects_only=True, problem=problem)
    return SearchTerm(pk_text, objects=objects, objects_only=True)


def any_of(conditions: Iterable[Q]) -> Q:
    """The conditions joined with OR; none at all matches nothing."""
    return functools.reduce(operator.or_, conditions, Q(pk__in=[]))


def id_conditions(text: str) -> list[Q]:
    """A task id or group id, whole or by its first ``MIN_ID_PREFIX`` characters or more (ids are lower case)."""
    conditions = []
    # A group id is indexed only where it is set: the condition says so, for the planner.
    grouped = ~Q(group_id="")
    for candidate in sorted({text, text.lower()}):
        conditions += [Q(task_id=candidate), Q(group_id=candidate) & grouped]
        if len(candidate) >= MIN_ID_PREFIX:
            conditions += [Q(task_id__startswith=candidate), Q(group_id__startswith=candidate) & grouped]
    return conditions


def search_dispatches(queryset: QuerySet[Dispatch], term: str, models: Iterable[type[Any]] = ()) -> QuerySet[Dispatch]:
    """Dispatches matching a search term, each clause on an index (see the module docstring)."""
    return filter_by(queryset, parse_search(term, models))


def filter_by(queryset: QuerySet[Dispatch], search: SearchTerm) -> QuerySet[Dispatch]:
    """The dispatches ``search`` finds."""
    if search.problem:
        return queryset.none()
    if not search.text:
        return queryset
    conditions = []
    if not search.objects_only:
        lowered = search.text.lower()
        task_names = [name for name in registered_task_names() if lowered in name.lower()]
        conditions += [*id_conditions(search.text), Q(task_name=search.text), Q(task_name__in=task_names)]
    if search.objects is not None and search.objects.keys:
        refs = ObjectRef.objects.filter(search.objects.condition())
        conditions.append(Q(pk__in=refs.values("dispatch_id")))
    return queryset.filter(any_of(conditions))
