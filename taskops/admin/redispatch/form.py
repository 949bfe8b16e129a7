"""The generic re-dispatch form, and what it shares with the replay's confirmation (``PublishForm``).

``RedispatchForm`` is built from the chosen task's signature (``fields``):
the task (only those re-dispatch allows and that take objects), the
parameter that takes the objects when several could, the objects' model
when the parameter takes subclasses too, the objects (a picker, typed pks,
or a selection kept from a changelist), the other arguments, how to publish
and why. Its ``clean`` asks the service (``taskops.redispatch.for_objects``)
for a checked draft, and shows each problem of a refusal at the field it
concerns. A POST naming a task, parameter or model the form did not offer
fails its choice field: nothing is drafted, nothing published.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from celery import current_app
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import QueryDict
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from taskops.admin.redispatch.fields import FieldFactory, Spec, argument, offered_models, specs
from taskops.admin.redispatch.tickets import Selection
from taskops.redispatch import Draft, Options, Refused, for_objects, policy
from taskops.redispatch.signature import Kind
from taskops.wire import json_pk

NO_CHOICE = ("", "---------")
#: The envelope key of the wire format: a JSON input holding it would smuggle objects past the form's checks.
ENVELOPE_KEY = "__type__"
#: Nesting a JSON input is searched to for envelopes (deeper is refused: the codec refuses it anyway).
JSON_DEPTH = 32


class PublishForm(forms.Form):
    """How and why the calls are published."""

    queue = forms.CharField(
        label=_("Queue"), required=False, max_length=255, help_text=_("Empty: each task's own queue.")
    )
    countdown = forms.FloatField(
        label=_("Countdown"), required=False, help_text=_("Seconds before the tasks may run (at most a week).")
    )
    priority = forms.IntegerField(
        label=_("Priority"), required=False, help_text=_("0 to 255, where the broker has priorities.")
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": _("Say why: the reason is kept in the audit.")},
    )

    #: Where each problem of a refusal shows (``Refused.problems`` keys -> fields); any other: at the top.
    problem_fields: dict[str, str] = {name: name for name in ("queue", "countdown", "priority", "reason")}

    def publishing(self) -> list[forms.BoundField]:
        """The inputs of how and why, for the template."""
        return [self[name] for name in ("queue", "countdown", "priority", "reason")]

    def publish_options(self) -> Options:
        data = self.cleaned_data
        return Options(data.get("queue") or "", data.get("countdown"), data.get("priority"))

    def refuse(self, refused: Refused) -> None:
        """Show each problem of the service's refusal at the field it concerns (or at the top)."""
        for key, messages in refused.problems.items():
            field = self.problem_fields.get(key)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


def allowed_tasks(model: type[Model] | None = None) -> list[Any]:
    """The registered tasks re-dispatch allows that take objects (objects of ``model``, when given), by name."""
    found = []
    for name in sorted(current_app.tasks):
        task = current_app.tasks[name]
        if policy.task_allowed(task) and object_parameters(specs(task), model):
            found.append(task)
    return found


def object_parameters(task_specs: list[Spec], model: type[Model] | None) -> list[Spec]:
    """The parameters the objects may go to (those that take ``model``, when given)."""
    return [s for s in task_specs if s.takes_objects and (model is None or issubclass(model, s.type))]


def refuse_envelopes(value: Any, depth: int = 0) -> None:
    """A JSON input may hold no envelope: objects go through the form's inputs, which check who may view them."""
    if depth > JSON_DEPTH:
        raise ValidationError(_("Nested too deep."))
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if isinstance(value, dict) and ENVELOPE_KEY in value:
        raise ValidationError(_("JSON here may not hold envelopes (“__type__”): choose objects with their own inputs."))
    for child in children:
        refuse_envelopes(child, depth + 1)


@attrs.frozen
class Group:
    """A parameter and its inputs, shown together (an attrs parameter: one input per attribute)."""

    spec: Spec
    fields: list[forms.BoundField]
    takes_the_objects: bool


class RedispatchForm(PublishForm):
    """Run a task for objects: the task, the objects, the other arguments, how and why."""

    task = forms.ChoiceField(
        label=_("Task"),
        widget=forms.Select(attrs={"data-taskops-shapes": "task"}),
        error_messages={
            "invalid_choice": _(
                "The form does not offer task %(value)s: it is not registered, takes no objects, "
                "or re-dispatch does not allow it."
            )
        },
    )

    def __init__(
        self,
        data: QueryDict | None = None,
        *,
        user: Any,
        factory: FieldFactory,
        selection: Selection | None = None,
        initial: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data, initial=initial)
        self.user, self.factory, self.selection = user, factory, selection
        #: The checked draft, once the form is valid.
        self.draft: Draft | None = None
        #: The objects' pks as text, and the other arguments, once cleaned.
        self.pks: list[str] = []
        self.kwargs: dict[str, Any] = {}
        offered = {task.name: task for task in allowed_tasks(selection.model if selection else None)}
        task_field = self.fields["task"]
        assert isinstance(task_field, forms.ChoiceField)
        task_field.choices = [NO_CHOICE, *((name, name) for name in offered)]
        self.chosen_task = offered.get(self.chosen("task"))
        self.specs = specs(self.chosen_task) if self.chosen_task is not None else []
        #: The parameter that takes the objects, and their model.
        self.target = self.add_target()
        self.objects_model = self.add_model()
        self.add_arguments()
        self.problem_fields = {
            **PublishForm.problem_fields,
            "task": "task",
            "parameter": "parameter" if "parameter" in self.fields else self.target_name,
            "model": self.target_name,
            "objects": self.target_name,
        }
        inputs = [s.name for top in self.specs for s in top.walk()]
        self.order_fields(["task", "parameter", "model", *inputs, "queue", "countdown", "priority", "reason"])

    @property
    def target_name(self) -> str:
        return self.target.name if self.target is not None else ""

    def chosen(self, name: str) -> str:
        """What the request chose for a field that shapes the form (bound data, else the initial value)."""
        value = (self.data if self.is_bound else self.initial).get(name)
        return value if isinstance(value, str) else ""

    def add_target(self) -> Spec | None:
        """The parameter the objects go to; a choice when several could take them."""
        candidates = object_parameters(self.specs, self.selection.model if self.selection else None)
        if not candidates:
            return None
        by_name = {spec.path[0]: spec for spec in candidates}
        if len(candidates) > 1:
            self.fields["parameter"] = forms.ChoiceField(
                label=_("Objects go to"),
                widget=forms.Select(attrs={"data-taskops-shapes": "parameter"}),
                choices=[(name, name) for name in by_name],
                help_text=_("The parameter that takes the objects: one call per object, or one with the list."),
                error_messages={"invalid_choice": _("The form does not offer parameter %(value)s for the objects.")},
            )
        return by_name.get(self.chosen("parameter"), candidates[0])

    def add_model(self) -> type[Model] | None:
        """The objects' model: the selection's, or one the parameter takes (a choice when it takes subclasses)."""
        if self.target is None:
            return None
        if self.selection is not None:
            return self.selection.model
        offered = {model._meta.label_lower: model for model in offered_models(self.target.type)}
        if not offered:  # the parameter's model may not travel: the objects' input says so
            model: type[Model] = self.target.type
            return model
        field = forms.ChoiceField(
            label=_("Model"),
            widget=forms.Select(attrs={"data-taskops-shapes": "model"}),
            choices=[(label, capfirst(model._meta.verbose_name)) for label, model in offered.items()],
            error_messages={"invalid_choice": _("The form does not offer model %(value)s for the objects.")},
        )
        if len(offered) == 1:
            field.widget = forms.HiddenInput()
        self.fields["model"] = field
        chosen = offered.get(self.chosen("model")) or next(iter(offered.values()))
        field.initial = chosen._meta.label_lower
        return chosen

    def add_arguments(self) -> None:
        """An input per parameter, or per attribute of an attrs parameter; the objects' as the model says."""
        for top in self.specs:
            for spec in top.walk():
                if spec is self.target:
                    if self.selection is None and self.objects_model is not None:
                        field = self.factory.objects_field(spec, self.objects_model, many=True, required=True)
                        self.fields[spec.name] = field
                elif not spec.children:
                    self.fields[spec.name] = self.factory.field(spec)
                else:
                    continue
                if spec.name in self.fields:
                    self.fields[spec.name].label = spec.label
                if spec.kind in (Kind.JSON, Kind.ATTRS):
                    self.fields[spec.name].validators.append(refuse_envelopes)

    def groups(self) -> list[Group]:
        """The arguments' inputs by parameter, for the template."""
        return [
            Group(top, [self[s.name] for s in top.walk() if s.name in self.fields], top is self.target)
            for top in self.specs
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.chosen_task is None or self.target is None or self.objects_model is None or self.errors:
            return cleaned  # the inputs' own errors first: the service is asked about a well-formed request
        self.kwargs = self.arguments(cleaned)
        if self.errors:
            return cleaned
        chosen = cleaned.get(self.target.name) or []
        if isinstance(chosen, QuerySet):  # picked: in pk order, as a changelist's selection is
            chosen = chosen.order_by("pk")
        self.pks = list(self.selection.pks) if self.selection else [str(json_pk(obj.pk)) for obj in chosen]
        try:
            self.draft = for_objects(
                user=self.user,
                task_name=self.chosen_task.name,
                model_label=self.objects_model._meta.label_lower,
                reason=cleaned.get("reason", ""),
                pks=self.pks,
                parameter=self.target.path[0],
                kwargs=self.kwargs,
                options=self.publish_options(),
                may_view=self.factory.visibility.may_view,  # the target ModelAdmin's view permission
            )
        except Refused as refused:
            self.refuse(refused)
        return cleaned

    def arguments(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """The other parameters' values, as the task gets them; a value a class refuses is an error at its input."""
        kwargs = {}
        for spec in self.specs:
            if spec is self.target:
                continue
            try:
                given, value = argument(spec, cleaned)
            except (TypeError, ValueError, cattrs.BaseValidationError) as error:
                first = next(s.name for s in spec.walk() if s.name in self.fields)
                self.add_error(first, _("%(name)s: %(error)s") % {"name": spec.label, "error": error})
                continue
            if given:
                kwargs[spec.path[0]] = value
        return kwargs
