"""Posting an alert to a webhook: a Celery task, signed, retried with backoff, failures kept on the alert.

``TASKOPS["WEBHOOK_RETRIES"]`` tries after the first, ``TASKOPS["WEBHOOK_BACKOFF"]``
seconds before the first retry, doubling for each later one (2, 4, 8, ... s).
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from typing import Any

from celery import shared_task

from taskops.alerts.journal import append, entry
from taskops.conf import taskops_settings
from taskops.models import Alert, Channel

SIGNATURE_HEADER = "X-Taskops-Signature"
#: Seconds a webhook may take to answer.
TIMEOUT = 5.0


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body with the rule's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, secret: str) -> int:
    """POST the body; the HTTP status (raises for a failure or a non-2xx answer)."""
    request = urllib.request.Request(  # the URL is checked to be http(s) by AlertRule.clean
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body)},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        status = int(response.status)
    if not 200 <= status < 300:
        raise urllib.error.HTTPError(url, status, "not a 2xx answer", response.headers, None)
    return status


def backoff(tries: int) -> float:
    """Seconds to wait after failed try number ``tries`` (1, 2, ...): the backoff, doubled for each try."""
    return float(taskops_settings.WEBHOOK_BACKOFF) * 2.0 ** (tries - 1)


@shared_task(bind=True, name="taskops.alerts.post_webhook", ignore_result=True)
def post_webhook(self: Any, alert_id: int, event: str, body: str) -> None:
    """Post one notification; each failed try is kept on the alert, then retried later, up to the limit."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        return
    try:
        status = post(alert.rule.webhook_url, body.encode(), alert.rule.webhook_secret)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        tries, retries = self.request.retries + 1, int(taskops_settings.WEBHOOK_RETRIES)
        last = "" if tries <= retries else ", the last"
        append(alert, [entry(Channel.WEBHOOK, event, False, f"try {tries}{last}: {type(exc).__name__}: {exc}")])
        if not last:
            raise self.retry(countdown=backoff(tries), max_retries=retries) from exc
        return
    append(alert, [entry(Channel.WEBHOOK, event, True, f"HTTP {status}")])
