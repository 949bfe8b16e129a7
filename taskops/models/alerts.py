"""Alert rules and the incidents they open."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from taskops.conf import taskops_settings


class Condition(models.TextChoices):
    """What an :class:`AlertRule` watches, per task name, over its window."""

    LAG_P95 = "lag_p95", _("Lag p95 over N seconds")
    LAG_ANY = "lag_any", _("Any task's lag over N seconds")
    DRIFT_RATE = "drift_rate", _("Changed or missing rows over N % of checked dispatches")
    ANY_MISSING = "any_missing", _("Any missing row")
    ANY_RACE = "any_race", _("Any likely race")
    BACKLOG_AGE = "backlog_age", _("A due task waiting over N seconds")
    STUCK = "stuck", _("Started but not finished after N seconds")
    FAILURE_RATE = "failure_rate", _("Failures over N % of finished dispatches")


class Channel(models.TextChoices):
    """Where an alert is told, on open and on resolve."""

    DASHBOARD = "dashboard", _("Dashboard")
    EMAIL = "email", _("Email")
    LOG = "log", _("Log")
    WEBHOOK = "webhook", _("Webhook")
    SIGNAL = "signal", _("Django signal")


class AlertRule(models.Model):
    """A condition on dispatches of matching tasks, and where to say that it holds."""

    name = models.CharField(_("name"), max_length=200)
    #: fnmatch pattern of task names (``shop.tasks.*``); each matching task is a subject of its own.
    task_pattern = models.CharField(_("task pattern"), max_length=255)
    condition = models.CharField(_("condition"), max_length=32, choices=Condition.choices)
    #: Seconds (lag, backlog, stuck) or percent (rates); unused by "any missing" and "any race".
    threshold = models.FloatField(_("threshold"), default=0)
    #: Dispatches a rate needs in the window before it counts (a rate over 2 dispatches says little).
    min_count = models.PositiveIntegerField(_("minimum count"), default=1)
    window = models.DurationField(_("window"), default=dt.timedelta(minutes=15))
    #: How long the condition must stay clear before an open alert is resolved.
    cooldown = models.DurationField(_("cool-down"), default=dt.timedelta(minutes=5))
    channels = models.JSONField(_("channels"), default=list, blank=True)
    #: Email recipients; empty: the project's ``ADMINS``.
    emails = models.TextField(_("email addresses"), blank=True)
    webhook_url = models.URLField(_("webhook URL"), blank=True, max_length=500)
    #: Signs each webhook body (HMAC-SHA256, ``X-Taskops-Signature``).
    webhook_secret = models.CharField(_("webhook secret"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a rule that could never work, field by field."""
        errors: dict[str, list[str]] = {}

        def refuse(field: str, message: Any) -> None:
            errors.setdefault(field, []).append(str(message))

        if not self.task_pattern.strip():
            refuse("task_pattern", _("Give a task name or pattern, e.g. shop.tasks.* (or * for every task)."))
        needs_threshold = self.condition not in (Condition.ANY_MISSING, Condition.ANY_RACE)
        if needs_threshold and not self.threshold > 0:
            refuse("threshold", _("This condition needs a threshold above zero."))
        if self.condition in (Condition.DRIFT_RATE, Condition.FAILURE_RATE) and self.threshold >= 100:
            refuse("threshold", _("A rate is a percentage below 100."))
        unknown = (
            [c for c in self.channels or [] if c not in Channel.values] if isinstance(self.channels, list) else ["?"]
        )
        if unknown:
            refuse("channels", _("Unknown channel(s): %(names)s.") % {"names": ", ".join(map(str, unknown))})
        self.clean_webhook(refuse)
        interval = taskops_settings.ALERTS_INTERVAL
        if self.window is not None and self.window < dt.timedelta(seconds=interval):
            refuse("window", _("The window must be at least the evaluation interval (%(s)s s).") % {"s": interval})
        if self.cooldown is not None and self.cooldown < dt.timedelta(0):
            refuse("cooldown", _("The cool-down cannot be negative."))
        if self.min_count < 1:
            refuse("min_count", _("The minimum count is at least 1."))
        if errors:
            raise ValidationError(errors)

    def clean_webhook(self, refuse: Callable[[str, Any], None]) -> None:
        """An http(s) URL whenever one is given; the webhook channel needs one, and a secret to sign with."""
        http = self.webhook_url.startswith(("http://", "https://"))
        wants_webhook = Channel.WEBHOOK in (self.channels or [])
        if (self.webhook_url or wants_webhook) and not http:
            refuse("webhook_url", _("The webhook needs an http:// or https:// URL."))
        if wants_webhook and not self.webhook_secret:
            # Unsigned posts could be forged by anyone who learns the URL: the receiver could not tell.
            refuse("webhook_secret", _("The webhook channel needs a secret: each post is signed with it."))

    def recipients(self) -> list[str]:
        """The rule's email addresses, else the project's ``ADMINS``."""
        listed = [address for address in re.split(r"[\s,;]+", self.emails) if address]
        # ADMINS: (name, address) pairs, or plain addresses (Django 6).
        return listed or [admin if isinstance(admin, str) else admin[1] for admin in settings.ADMINS]


class Alert(models.Model):
    """One incident: a rule's condition holding for one task name, from open to resolved."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    #: The task name the condition holds for.
    subject = models.CharField(_("task"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    #: Rounds (or task starts) in which the condition held.
    count = models.PositiveIntegerField(_("count"), default=1)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    #: The measured value when last seen (seconds, percent or rows), for the message.
    value = models.FloatField(_("value"), default=0)
    #: A few dispatch ids that show it.
    samples = models.JSONField(_("sample dispatches"), default=list, blank=True)
    #: Since when the condition has been clear (resolved after the rule's cool-down).
    clear_since = models.DateTimeField(_("clear since"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    #: What each notification did: ``[{"channel", "event", "ok", "detail", "at"}]``; failures stay visible.
    notifications = models.JSONField(_("notifications"), default=list, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen", "-pk"]
        constraints = [
            # One incident at a time per rule and task: later occurrences count on it.
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=~models.Q(status="resolved"),
                name="taskops_alert_one_open",
            ),
        ]
        indexes = [models.Index(fields=["status", "-last_seen"], name="taskops_alert_status")]

    def __str__(self) -> str:
        # Not the rule's name: pages show an alert to users who may not view its rule (and no query for it).
        return str(_("Alert #%(pk)s on %(task)s") % {"pk": self.pk, "task": self.subject})
