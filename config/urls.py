"""URLs of the host project: the admin is where taskops lives."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

import taskops.views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics/", taskops.views.metrics),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
