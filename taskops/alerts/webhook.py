"""Posting an alert to a webhook: a Celery task, signed, retried with backoff, failures kept on the alert."""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from typing import Any

from celery import shared_task

from taskops.alerts.journal import append, entry
from taskops.models import Alert, Channel

SIGNATURE_HEADER = "X-Taskops-Signature"
#: Seconds a webhook may take to answer.
TIMEOUT = 5.0
#: Tries after the first, with exponential backoff (2 s, 4 s, 8 s, ...).
RETRIES = 5


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


@shared_task(bind=True, name="taskops.alerts.post_webhook", max_retries=RETRIES, ignore_result=True)
def post_webhook(self: Any, alert_id: int, event: str, body: str) -> None:
    """Post one notification; each failed try is kept on the alert, then retried later."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        return
    try:
        status = post(alert.rule.webhook_url, body.encode(), alert.rule.webhook_secret)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        tries = self.request.retries + 1
        append(alert, [entry(Channel.WEBHOOK, event, False, f"try {tries}: {type(exc).__name__}: {exc}")])
        if self.request.retries < RETRIES:
            raise self.retry(countdown=2**tries) from exc
        return
    append(alert, [entry(Channel.WEBHOOK, event, True, f"HTTP {status}")])
