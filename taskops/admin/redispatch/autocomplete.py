"""The object pickers' search: Django's autocomplete view, for an input of the generic form.

Django's own ``autocomplete/`` view finds the model to search through a
model's foreign key (``app_label``, ``model_name``, ``field_name`` of the
field). A task's parameter is no model field, so the pickers ask this
subclass of ``AutocompleteJsonView`` instead: the same JSON, pagination and
search (the target ``ModelAdmin``'s ``get_search_results`` over its
``search_fields``), the same permission (the target ``ModelAdmin``'s view
permission), with the model found through the task's signature. A request
naming a task, an input or a model the form would not offer is refused
(403), as Django refuses a field that is not a foreign key.

Cost: what the target ``ModelAdmin``'s search costs, one page of results.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.contrib.admin import ModelAdmin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from taskops.admin.redispatch.fields import object_specs, offered_models, specs
from taskops.redispatch import policy


def searched_model(task_name: str, input_name: str, label: str) -> type[Model] | None:
    """The model an input of the form for ``task_name`` may search, if ``label`` is one it takes."""
    task = current_app.tasks.get(task_name)
    if task is None or not policy.task_allowed(task):
        return None
    for spec in object_specs(specs(task)):
        if spec.name == input_name:
            return next((m for m in offered_models(spec.type) if m._meta.label_lower == label), None)
    return None


class ObjectAutocomplete(AutocompleteJsonView):
    """Search one input's model with its ``ModelAdmin``'s search, for the generic re-dispatch form."""

    def process_request(self, request: HttpRequest) -> tuple[str, ModelAdmin[Any], Any, str]:
        """``(term, target model admin, its pk field, the pk's attname)``; 403 for what the form would not offer.

        Django returns the foreign key as the third item, for its ``limit_choices_to``; a parameter has none
        (``get_queryset`` does not ask), so the pk field stands in.
        """
        params = request.GET
        label = f"{params.get('app_label', '')}.{params.get('model_name', '')}".lower()
        model = searched_model(params.get("task", ""), params.get("field_name", ""), label)
        assert self.admin_site is not None
        model_admin = self.admin_site._registry.get(model) if model is not None else None
        if model is None or model_admin is None:
            raise PermissionDenied
        if not model_admin.get_search_fields(request):
            raise Http404(f"{type(model_admin).__qualname__} must have search_fields for the autocomplete_view.")
        pk = model._meta.pk
        assert pk is not None
        return params.get("term", ""), model_admin, pk, pk.attname

    def get_queryset(self) -> QuerySet[Any]:
        """The target admin's rows, searched as its changelist searches (a parameter has no ``limit_choices_to``)."""
        queryset = self.model_admin.get_queryset(self.request)
        queryset, distinct = self.model_admin.get_search_results(self.request, queryset, self.term)
        return queryset.distinct() if distinct else queryset
