"""``AlertRuleAdmin`` and ``AlertAdmin``: rules edited in the admin, the alerts they open, read and acknowledged.

Each follows its own model's permissions. A rule is validated by the model
(``AlertRule.clean``, errors on their fields); its webhook secret is
write-only (``alert_form``). An alert is read-only: the evaluation writes it,
an operator acknowledges it (the "acknowledge" action, which needs the change
permission and leaves a ``LogEntry``). What an alert's pages show of other
models' rows (its rule, who acknowledged it, its sample dispatches) follows
``Visibility`` through ``Linker`` (``alert_display``).

Queries: alerts come with their rule and the acknowledging user joined, on
the changelist and on an alert's page, which adds one query for its sample
dispatches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from taskops.admin import alert_display
from taskops.admin.alert_form import AlertRuleForm
from taskops.admin.change_history import VisibleChangeHistory
from taskops.admin.display import dotted_name, format_duration, moment_html
from taskops.admin.links import Linker
from taskops.admin.params import CheckedChangelist
from taskops.admin.redispatch.actions import WithoutRunTask
from taskops.alerts import acknowledge as acknowledge_alert
from taskops.models import Alert, AlertRule, Channel

if TYPE_CHECKING:
    RuleAdminBase = admin.ModelAdmin[AlertRule]
    AlertAdminBase = admin.ModelAdmin[Alert]
else:
    RuleAdminBase = AlertAdminBase = admin.ModelAdmin

#: What acknowledging changes.
ACKNOWLEDGED_FIELDS = ["status", "acknowledged_by", "acknowledged_at"]


def acknowledged_message() -> list[dict[str, Any]]:
    """An acknowledgement as a ``LogEntry`` says it: Django's change message, the fields by their names."""
    names = [str(capfirst(f.verbose_name)) for f in Alert._meta.concrete_fields if f.name in ACKNOWLEDGED_FIELDS]
    return [{"changed": {"fields": names}}]


@admin.register(AlertRule)
class AlertRuleAdmin(VisibleChangeHistory, WithoutRunTask, CheckedChangelist, RuleAdminBase):
    """Rules: a condition on matching tasks and where to tell it; validated field by field by the model."""

    form = AlertRuleForm
    list_display = ["name", "task_pattern", "condition", "threshold_display", "window_display", "channels_display"]
    list_display_links = ["name"]
    list_filter = ["enabled", "condition"]
    search_fields = ["name", "task_pattern"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "task_pattern"]}),
        (
            _("Condition"),
            {
                "fields": ["condition", "threshold", "min_count", "window", "cooldown"],
                "description": _(
                    "The threshold is in seconds for lag, backlog and stuck work, in percent for rates, "
                    "and unused by “any missing row” and “any likely race”. Durations: hh:mm:ss."
                ),
            },
        ),
        (_("Channels"), {"fields": ["channels", "emails", "webhook_url", "webhook_secret"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: AlertRule | None = None) -> Any:
        """The secret is write-only: "remove" beside it on a stored rule; nothing of it for read-only users."""
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        secret = ["webhook_secret", "clear_webhook_secret"] if obj is not None else ["webhook_secret"]
        channels = ["channels", "emails", "webhook_url", *(secret if editable else ["secret_display"])]
        fieldsets = list(super().get_fieldsets(request, obj))
        return [*fieldsets[:-1], (fieldsets[-1][0], {**fieldsets[-1][1], "fields": channels})]

    @admin.display(description=_("threshold"))
    def threshold_display(self, obj: AlertRule) -> str:
        return alert_display.threshold_text(obj)

    @admin.display(description=_("window"), ordering="window")
    def window_display(self, obj: AlertRule) -> str:
        return format_duration(obj.window)

    @admin.display(description=_("channels"))
    def channels_display(self, obj: AlertRule) -> str:
        names = obj.channels if isinstance(obj.channels, list) else []
        return ", ".join(str(Channel(c).label) if c in Channel.values else str(c) for c in names) or "—"

    @admin.display(description=_("webhook secret"))
    def secret_display(self, obj: AlertRule) -> str:
        """Whether a secret is set, never what it is."""
        return str(_("set") if obj.webhook_secret else _("not set"))


@admin.register(Alert)
class AlertAdmin(VisibleChangeHistory, WithoutRunTask, CheckedChangelist, AlertAdminBase):
    """Alerts, read-only; acknowledged by an action (change permission), each acknowledgement logged."""

    list_display = [
        "subject_display",
        "status_display",
        "rule_display",
        "count",
        "value_display",
        "first_seen_display",
        "last_seen_display",
        "acknowledged_display",
    ]
    list_filter = ["status"]
    search_fields = ["subject"]
    ordering = ["-last_seen", "-pk"]
    actions = ["acknowledge"]
    fields = readonly_fields = (
        "subject",
        "status",
        "count",
        "value_display",
        "first_seen",
        "last_seen",
        "clear_since",
        "acknowledged_at",
        "resolved_at",
    )

    class Media:
        css = {"all": ["taskops/admin.css", "taskops/alerts.css"]}

    # --- permissions: the evaluation writes alerts; operators read and acknowledge them ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """The model's change permission, for the action; an alert's own page is read-only for everyone."""
        return obj is None and super().has_change_permission(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        return super().get_queryset(request).select_related("rule", "acknowledged_by")

    # --- the changelist: columns that show other models' rows are bound to the request ---

    def get_list_display(self, request: HttpRequest) -> Any:
        linker = Linker(self.admin_site, request)

        @admin.display(description=_("rule"))
        def rule_display(obj: Alert) -> SafeString:
            return alert_display.rule_html(obj.rule, linker)

        @admin.display(description=_("acknowledged"), ordering="acknowledged_at")
        def acknowledged_display(obj: Alert) -> SafeString | str:
            if obj.acknowledged_at is None:
                return "—"
            who = alert_display.user_html(obj.acknowledged_by, linker)
            return format_html("{} {}", who, moment_html(obj.acknowledged_at))

        bound: dict[str, Callable[[Alert], SafeString | str]] = {
            "rule_display": rule_display,
            "acknowledged_display": acknowledged_display,
        }
        return [bound.get(name, name) if isinstance(name, str) else name for name in super().get_list_display(request)]

    @admin.display(description=_("task"), ordering="subject")
    def subject_display(self, obj: Alert) -> SafeString:
        return dotted_name(obj.subject)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj: Alert) -> SafeString:
        return alert_display.status_badge(obj.status)

    @admin.display(description=_("rule"))
    def rule_display(self, obj: Alert) -> SafeString:
        """The column as the admin's checks see it; ``get_list_display`` binds it to the request."""
        return alert_display.rule_html(obj.rule, Linker(self.admin_site, None))

    @admin.display(description=_("value"))
    def value_display(self, obj: Alert) -> str:
        """The value when last seen, in the rule's unit."""
        return alert_display.measured(obj.rule.condition, obj.value)

    @admin.display(description=_("first seen"), ordering="first_seen")
    def first_seen_display(self, obj: Alert) -> SafeString:
        return moment_html(obj.first_seen)

    @admin.display(description=_("last seen"), ordering="last_seen")
    def last_seen_display(self, obj: Alert) -> SafeString:
        return moment_html(obj.last_seen)

    @admin.display(description=_("acknowledged"), ordering="acknowledged_at")
    def acknowledged_display(self, obj: Alert) -> SafeString | str:
        """The column as the admin's checks see it; ``get_list_display`` binds it to the request."""
        return moment_html(obj.acknowledged_at) if obj.acknowledged_at else "—"

    # --- the action ---

    @admin.action(permissions=["change"], description=_("Acknowledge selected alerts"))
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        """Acknowledge the open ones (``taskops.alerts.acknowledge``), log each; the others are left as they are."""
        selected = list(queryset)
        with transaction.atomic():  # each acknowledgement with its audit, or neither
            done = [alert for alert in selected if acknowledge_alert(alert, request.user)]
            for alert in done:
                self.log_change(request, alert, acknowledged_message())
        if done:
            message = ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", len(done))
            self.message_user(request, message % {"count": len(done)}, messages.SUCCESS)
        if skipped := len(selected) - len(done):
            message = ngettext(
                "%(count)d alert was not open (already acknowledged or resolved): left as it is.",
                "%(count)d alerts were not open (already acknowledged or resolved): left as they are.",
                skipped,
            )
            self.message_user(request, message % {"count": skipped}, messages.WARNING)

    # --- an alert's page ---

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Django's page and what ``get_detail_context`` adds, under the view's ``extra_context`` (which wins)."""
        alert = kwargs.get("obj")  # Django passes it by name
        if isinstance(alert, Alert):
            context = {**self.get_detail_context(request, alert), **context}
        return super().render_change_form(request, context, *args, **kwargs)

    def get_detail_context(self, request: HttpRequest, obj: Alert) -> dict[str, Any]:
        """What an alert's page shows beyond its fields: rule, who acknowledged it, notifications, dispatches."""
        linker = Linker(self.admin_site, request)
        return {
            "alert": obj,
            "rule_html": alert_display.rule_summary(obj.rule, linker),
            "value_text": alert_display.measured(obj.rule.condition, obj.value),
            "acknowledged_by_html": alert_display.user_html(obj.acknowledged_by, linker),
            "notifications": alert_display.notification_rows(obj),
            "samples": alert_display.sample_rows(obj, linker),
            "dispatches_url": alert_display.dispatches_url(obj, linker),
            "can_acknowledge": obj.status == Alert.Status.OPEN and self.has_change_permission(request),
            "changelist_url": reverse(f"{self.admin_site.name}:taskops_alert_changelist"),
        }
