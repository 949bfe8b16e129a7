"""taskops' views outside the admin: the Prometheus metrics endpoint.

Add it to the project's URLs::

    path("metrics/", taskops.views.metrics)

It answers a scraper that sends ``Authorization: Bearer <TASKOPS["METRICS_TOKEN"]>``
(compared in constant time) or a logged-in staff user who may view dispatches;
anyone else gets 401 (no credentials) or 403.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from taskops.alerts.metrics import exposition
from taskops.conf import taskops_settings


def has_token(request: HttpRequest) -> bool:
    token = taskops_settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), str(token).encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The text exposition for Prometheus."""
    user = request.user
    if not has_token(request):
        if not user.is_authenticated:
            response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="taskops metrics"'
            return response
        if not (user.is_active and user.is_staff and user.has_perm("taskops.view_dispatch")):
            return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
