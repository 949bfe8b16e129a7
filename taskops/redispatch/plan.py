"""Checking a re-dispatch before anything is published: the one gate of every path.

The admin's form and actions and ``taskops_redispatch`` all build a
:class:`Draft` here. Every check runs before anything is written or
published, and every problem is reported at once (:class:`Refused`, by
field): the task is allowed, every model is allowed and viewable by the
user, the user may re-dispatch, the arguments fit the task's signature, every
object exists, the selection is under the cap, a reason is given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
from celery import current_app
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet

from taskops.conf import taskops_settings
from taskops.models import Dispatch, ObjectRef, Redispatch
from taskops.recording.records import find_instances
from taskops.redispatch import policy
from taskops.redispatch.replays import replay_skips
from taskops.redispatch.signature import Kind, binding_problem, object_parameters
from taskops.wire import RefPlaceholder, dumps, json_pk
from taskops.wire.limits import current_limits
from taskops.wire.refs import ModelRef

#: Field of a problem that concerns the whole request.
GENERAL = "__all__"
#: pks looked up per query when checking that objects exist.
EXISTENCE_CHUNK = 2_000
#: Missing pks named in a message before "and N more".
NAMED_MISSING = 10


class Refused(Exception):
    """A re-dispatch that may not go ahead; ``problems`` maps a field (or ``__all__``) to messages."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__(
            "; ".join(f"{field}: {m}" if field != GENERAL else m for field, ms in problems.items() for m in ms)
        )
        self.problems = problems


class Problems:
    """Messages by field, gathered so that all of them are reported at once."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self.by_field:
            raise Refused(self.by_field)


@attrs.frozen
class Options:
    """How the calls are published."""

    queue: str = ""
    countdown: float | None = None
    priority: int | None = None

    def check(self, problems: Problems) -> None:
        if len(self.queue) > 255 or "\x00" in self.queue:
            problems.add("queue", "A queue name is at most 255 characters, without NUL.")
        if self.countdown is not None and not 0 <= self.countdown <= 7 * 24 * 3600:
            problems.add("countdown", "A countdown is between 0 and 604800 seconds (a week).")
        if self.priority is not None and not 0 <= self.priority <= 255:
            problems.add("priority", "A priority is between 0 and 255.")

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "countdown": self.countdown, "priority": self.priority}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Options:
        return cls(value.get("queue") or "", value.get("countdown"), value.get("priority"))


@attrs.frozen
class Draft:
    """A checked re-dispatch: saved and published by :func:`taskops.redispatch.submit`."""

    kind: Redispatch.Kind
    user: Any
    reason: str
    task_name: str
    plan: dict[str, Any]
    options: Options
    total: int
    #: The items' targets in order, read in chunks (a selection is never loaded whole).
    targets: Callable[[], Iterator[str]]
    #: Calls that will be skipped, by reason (replay: ``replays.Skip``, counted over the whole selection).
    skips: dict[str, int] = attrs.Factory(dict)


def check_count(problems: Problems, field: str, count: int, what: str) -> None:
    """At least one, and at most ``TASKOPS["REDISPATCH_MAX_CALLS"]``."""
    cap = taskops_settings.REDISPATCH_MAX_CALLS
    if count == 0:
        problems.add(field, f"Choose at least one {what}.")
    elif count > cap:
        problems.add(field, f"{count} {field}, more than the {cap} one re-dispatch may take (REDISPATCH_MAX_CALLS).")


def _common(problems: Problems, user: Any, reason: str, options: Options) -> None:
    if not policy.may_redispatch(user):
        problems.add(GENERAL, f"You do not have the permission to re-dispatch tasks ({policy.PERMISSION}).")
    if not reason.strip():
        problems.add("reason", "Say why: the reason is kept in the audit.")
    options.check(problems)


def find_task(name: str, problems: Problems) -> Any:
    """The registered task, if re-dispatch allows it; None (and a problem) otherwise."""
    task = current_app.tasks.get(name)
    if task is None:
        problems.add("task", f"No task named {name!r} is registered.")
        return None
    if not policy.task_allowed(task):
        problems.add(
            "task", f"Task {name!r} may not be re-dispatched (TASKOPS['REDISPATCH_TASKS'] or redispatch=True)."
        )
        return None
    return task


#: Whether the user may view a model's rows. The admin passes its site's answer (the target
#: ``ModelAdmin.has_view_permission``); elsewhere it is the user's model permission (:func:`user_may_view`).
MayView = Callable[[type[Model]], bool]


def user_may_view(user: Any) -> MayView:
    """The user's view (or change) permission on a model, as ``ModelAdmin`` reads it by default."""
    return functools.partial(policy.may_view, user)


def find_model(label: str, may_view: MayView, problems: Problems, field: str = "model") -> type[Model] | None:
    """The installed model, if it may travel and the user may view it; None (and a problem) otherwise."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        problems.add(field, f"No model {label!r} is installed.")
        return None
    if not policy.model_allowed(model):
        problems.add(field, f"Model {model._meta.label_lower!r} is not in TASKOPS['ALLOWED_MODELS'].")
        return None
    if not may_view(model):
        problems.add(field, f"You may not view {model._meta.verbose_name_plural}.")
        return None
    return model


def for_objects(
    *,
    user: Any,
    task_name: str,
    model_label: str,
    reason: str,
    pks: Iterable[Any] | None = None,
    queryset: QuerySet[Any] | None = None,
    parameter: str | None = None,
    kwargs: dict[str, Any] | None = None,
    options: Options | None = None,
    may_view: MayView | None = None,
) -> Draft:
    """Run ``task_name`` for objects (``pks``, or the rows of ``queryset``): one call each, or one with
    the list when the parameter takes a list. ``kwargs`` are the other arguments, as Python values;
    ``may_view`` says which models the user may view (default: :func:`user_may_view`)."""
    problems, options, kwargs = Problems(), options or Options(), kwargs or {}
    may_view = may_view or user_may_view(user)
    _common(problems, user, reason, options)
    task = find_task(task_name, problems)
    model = find_model(model_label, may_view, problems)
    if task is None or model is None:
        raise Refused(problems.by_field)
    param = _object_parameter(task, model, parameter, problems)
    if param is not None:
        sample = RefPlaceholder(ModelRef(model._meta.label_lower, 0))
        why = binding_problem(task, (), {**kwargs, param.name: [sample] if param.kind is Kind.MODELS else sample})
        if why:
            problems.add("kwargs", f"The arguments do not fit {task_name}: {why}.")
    argument_refs = check_argument_models(kwargs, may_view, problems)
    targets, count = _object_targets(model, pks, queryset, problems)
    check_count(problems, "objects", count, "object")
    many = param is not None and param.kind is Kind.MODELS
    check_refs_per_call(problems, (count if many else 1) + argument_refs)
    problems.raise_any()
    assert param is not None
    plan = {"model": model._meta.label_lower, "parameter": param.name, "many": many, "kwargs": dumps(kwargs)}
    if many:  # one call with every object

        def one_list() -> Iterator[str]:
            yield dumps(list(targets()))

        return Draft(Redispatch.Kind.OBJECTS, user, reason, task.name, plan, options, 1, one_list)
    return Draft(Redispatch.Kind.OBJECTS, user, reason, task.name, plan, options, count, targets)


def check_refs_per_call(problems: Problems, refs: int) -> None:
    """One message holds at most ``TASKOPS["MAX_REFS"]`` references: the worker refuses a bigger one."""
    limit = current_limits().max_refs
    if refs > limit:
        problems.add(
            "objects",
            f"One call would carry {refs} model references, more than the {limit} a message may hold "
            "(TASKOPS['MAX_REFS']): choose fewer objects.",
        )


def check_argument_models(kwargs: dict[str, Any], may_view: MayView, problems: Problems) -> int:
    """The other arguments' objects (instances, or references from JSON) obey the same rules as the
    selected ones: their models may travel and the user may view them. Returns how many there are."""
    found: list[tuple[str, Any]] = []
    find_instances(kwargs, "kwargs", found)
    labels = {item.ref.label if isinstance(item, RefPlaceholder) else item._meta.label_lower for _, item in found}
    for label in sorted(labels):
        find_model(label, may_view, problems, field="kwargs")
    return len(found)


def _object_parameter(task: Any, model: type[Model], name: str | None, problems: Problems) -> Any:
    candidates = object_parameters(task, model)
    if name is not None:
        chosen = [p for p in candidates if p.name == name]
        if not chosen:
            problems.add("parameter", f"{task.name} has no parameter {name!r} that takes {model._meta.verbose_name}.")
            return None
        return chosen[0]
    if len(candidates) != 1:
        which = "no parameter" if not candidates else "several parameters"
        problems.add("parameter", f"{task.name} has {which} annotated with {model.__name__}: say which one.")
        return None
    return candidates[0]


def _object_targets(
    model: type[Model], pks: Iterable[Any] | None, queryset: QuerySet[Any] | None, problems: Problems
) -> tuple[Callable[[], Iterator[str]], int]:
    """The selected objects' pks as text, read lazily, and how many; problems for bad or missing pks."""
    if queryset is not None:
        if queryset.model is not model:
            problems.add(
                "objects", f"The selection is of {queryset.model._meta.label_lower}, not {model._meta.label_lower}."
            )
            return (lambda: iter(())), 0
        ordered = queryset.order_by("pk").values_list("pk", flat=True)
        return (lambda: (str(json_pk(pk)) for pk in ordered.iterator(chunk_size=EXISTENCE_CHUNK))), ordered.count()
    field = model._meta.pk
    assert field is not None
    wanted: dict[Any, None] = {}  # in order, each once (a selection holds up to REDISPATCH_MAX_CALLS pks)
    for raw in pks or ():
        try:
            value = field.to_python(raw)
            field.run_validators(value)
        except (ValidationError, TypeError, ValueError):
            problems.add("objects", f"{str(raw)[:80]!r} is not a valid pk for {model._meta.label_lower}.")
            continue
        wanted[value] = None
    missing = _missing(model, list(wanted))
    if missing:
        named = ", ".join(map(str, missing[:NAMED_MISSING])) + (
            f" and {len(missing) - NAMED_MISSING} more" if len(missing) > NAMED_MISSING else ""
        )
        problems.add("objects", f"No {model._meta.verbose_name} with pk {named}.")
    texts = [str(json_pk(pk)) for pk in wanted]
    return (lambda: iter(texts)), len(texts)


def named(values: list[Any]) -> str:
    """The first few values, and how many more."""
    more = len(values) - NAMED_MISSING
    return ", ".join(map(str, values[:NAMED_MISSING])) + (f" and {more} more" if more > 0 else "")


def _missing(model: type[Model], pks: list[Any]) -> list[Any]:
    found: set[Any] = set()
    for start in range(0, len(pks), EXISTENCE_CHUNK):
        chunk = pks[start : start + EXISTENCE_CHUNK]
        found.update(model._default_manager.filter(pk__in=chunk).values_list("pk", flat=True))
    return [pk for pk in pks if pk not in found]


def replay(
    *,
    user: Any,
    dispatches: QuerySet[Dispatch],
    reason: str,
    options: Options | None = None,
    count_skips: bool = True,
    may_view: MayView | None = None,
) -> Draft:
    """Publish the selected dispatches again with their exact stored arguments (rows fetched afresh).

    A dispatch whose task is not allowed, whose arguments were redacted or whose objects are gone is
    skipped, not refused: ``Draft.skips`` counts them now (``replays.replay_skips``); arguments that no
    longer fit the task's signature are found when they are published. Counting reads every selected
    row: a caller that showed the counts already (the admin's confirmed replay) passes ``count_skips=False``.
    """
    problems, options = Problems(), options or Options()
    may_view = may_view or user_may_view(user)
    _common(problems, user, reason, options)
    count = dispatches.count()
    check_count(problems, "dispatches", count, "dispatch")
    ref_types = ObjectRef.objects.filter(dispatch__in=dispatches.values("pk")).values("content_type")
    for content_type in ContentType.objects.filter(pk__in=ref_types):
        model = content_type.model_class()
        if model is not None:
            find_model(model._meta.label_lower, may_view, problems, field="dispatches")
    problems.raise_any()
    skips = replay_skips(dispatches) if count_skips else {}
    ordered = dispatches.order_by("pk").values_list("pk", flat=True)
    return Draft(
        Redispatch.Kind.REPLAY,
        user,
        reason,
        "",
        {},
        options,
        count,
        lambda: (str(pk) for pk in ordered.iterator(chunk_size=EXISTENCE_CHUNK)),
        skips,
    )
