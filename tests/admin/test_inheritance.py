"""Multi-table inheritance: a row is one row under its parent's model and its own.

A ``Restaurant`` is a ``Place`` with the same pk: a dispatch given either is
found from both, in the object's task history and in the search.
"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from taskops.admin.objects import same_row_content_types, same_row_models
from taskops.models import Dispatch
from tests.admin.helpers import CHANGELIST, change_url, history_url, result_task_ids
from tests.factories import make_dispatch
from tests.testapp.models import Diner, Place, Question, Restaurant

pytestmark = pytest.mark.django_db


@pytest.fixture
def restaurant() -> Restaurant:
    return Restaurant.objects.create(name="Luigi's", serves_pizza=True)


@pytest.fixture
def dispatches(restaurant: Restaurant) -> dict[str, Dispatch]:
    """One dispatch given the restaurant, one given the same row as a place, one given another place."""
    other = Place.objects.create(name="A park")
    return {
        "as-child": make_dispatch(restaurant),
        "as-parent": make_dispatch(Place.objects.get(pk=restaurant.pk)),
        "other-place": make_dispatch(other),
    }


def short_ids(*made: Dispatch) -> list[str]:
    return [dispatch.task_id[:8] for dispatch in made]


def test_the_chain_of_a_row() -> None:
    assert same_row_models(Restaurant) == (Restaurant, Place)
    assert same_row_models(Place) == (Place, Restaurant)
    assert same_row_models(Diner) == (Restaurant, Place)  # a proxy names its concrete model's rows
    assert same_row_models(Question) == (Question,)
    place_type = ContentType.objects.get_for_model(Place)
    assert same_row_content_types(place_type) == [place_type, ContentType.objects.get_for_model(Restaurant)]


@pytest.mark.parametrize("model", [Place, Restaurant])
def test_history_holds_the_dispatches_of_the_row_under_any_model_of_its_chain(
    admin_client: Client, restaurant: Restaurant, dispatches: dict[str, Dispatch], model: type[Place]
) -> None:
    html = admin_client.get(history_url(model.objects.get(pk=restaurant.pk))).content.decode()

    assert result_task_ids(html) == short_ids(dispatches["as-parent"], dispatches["as-child"])
    assert "2 dispatches" in html
    recorded_as = "as Restaurant" if model is Place else "as Place"
    assert html.count(recorded_as) == 1  # the row recorded under the other model says so


def test_history_of_a_proxy_is_its_concrete_models(
    admin_client: Client, restaurant: Restaurant, dispatches: dict[str, Dispatch]
) -> None:
    diner = Diner.objects.get(pk=restaurant.pk)
    proxy_type = ContentType.objects.get_for_model(Diner, for_concrete_model=False)
    url = reverse("admin:taskops_dispatch_object_history", args=[proxy_type.pk, diner.pk])

    change_form = admin_client.get(change_url(diner)).content.decode()
    html = admin_client.get(url).content.decode()

    assert f'href="{url}"' in change_form  # the proxy's own change form links here
    assert result_task_ids(html) == short_ids(dispatches["as-parent"], dispatches["as-child"])


@pytest.mark.parametrize("label", ["testapp.place", "testapp.restaurant", "Testapp.Place"])
def test_search_finds_the_row_under_any_model_of_its_chain(
    admin_client: Client, restaurant: Restaurant, dispatches: dict[str, Dispatch], label: str
) -> None:
    html = admin_client.get(CHANGELIST, {"q": f"{label}:{restaurant.pk}"}).content.decode()

    assert set(result_task_ids(html)) == set(short_ids(dispatches["as-parent"], dispatches["as-child"]))


def test_history_stays_on_the_index(
    admin_client: Client, restaurant: Restaurant, dispatches: dict[str, Dispatch]
) -> None:
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(history_url(restaurant))

    page_query = next(q["sql"] for q in queries if 'FROM "taskops_objectref"' in q["sql"] and "ORDER BY" in q["sql"])
    assert '"taskops_objectref"."content_type_id" IN (' in page_query
    assert '"taskops_objectref"."object_pk" = ' in page_query
    assert 'ORDER BY "taskops_objectref"."dispatch_id" DESC' in page_query
