"""URLs of the test suite: the admin is where taskops lives."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

import taskops.views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics/", taskops.views.metrics),
]
