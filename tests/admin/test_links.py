"""Links to objects and to the admin's pages, built without a ``reverse`` per object."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote as admin_quote
from django.urls import reverse

from taskops.admin.links import Linker

pytestmark = pytest.mark.django_db


def test_object_links_match_reverse_for_awkward_primary_keys() -> None:
    linker = Linker(admin.site, None)
    for pk in ["42", "a b/c_d?e#f", "ünï%cödé"]:
        expected = reverse("admin:taskops_dispatch_object_history", args=[7, admin_quote(pk)])
        assert linker.history_url(7, pk) == expected
        assert linker._patterns.url("admin:auth_user_change", pk) == reverse(
            "admin:auth_user_change", args=[admin_quote(pk)]
        )
    assert linker._patterns.url("admin:testapp_book_change", "1") is None  # not registered
