"""The TASKOPS settings object: defaults, lazy reads, reset on change."""

from __future__ import annotations

import pytest
from django.test import override_settings

from taskops.conf import taskops_settings


def test_defaults() -> None:
    assert taskops_settings.MAX_DEPTH == 32
    assert taskops_settings.ALLOWED_MODELS is None
    assert taskops_settings.CELERY_APP is None


def test_override_reaches_the_cached_object() -> None:
    assert taskops_settings.MAX_REFS == 10_000

    with override_settings(TASKOPS={"MAX_REFS": 5}):
        assert taskops_settings.MAX_REFS == 5
        assert taskops_settings.MAX_NODES == 100_000

    assert taskops_settings.MAX_REFS == 10_000


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Invalid taskops setting: 'MAX_DEPHT'"):
        _ = taskops_settings.MAX_DEPHT


@override_settings(TASKOPS=["not", "a", "dict"])
def test_a_setting_that_is_not_a_dict_falls_back_to_defaults() -> None:
    assert taskops_settings.MAX_DEPTH == 32
