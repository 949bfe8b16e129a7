"""The form of an ``AlertRule`` in the admin: channels as checkboxes, a webhook secret never shown again.

Validation is the model's (``AlertRule.clean``): its errors land on their
fields, and this form adds no rule of its own, so a rule saved from the admin,
a fixture or a script is judged the same way. The secret is write-only: the
page never holds it, not even after an error; left blank, the stored one is
kept; "remove" clears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from taskops.models import AlertRule, Channel

if TYPE_CHECKING:
    RuleFormBase = forms.ModelForm[AlertRule]
else:
    RuleFormBase = forms.ModelForm


class ChannelsField(forms.MultipleChoiceField):
    """Channels as checkboxes; which names are valid is for ``AlertRule.clean`` to say (one message, one place)."""

    widget = forms.CheckboxSelectMultiple

    def valid_value(self, value: Any) -> bool:
        return True


class AlertRuleForm(RuleFormBase):
    channels = ChannelsField(label=_("Channels"), choices=Channel.choices, required=False)
    emails = forms.CharField(
        label=_("Email addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Separated by commas or spaces; empty: the project's ADMINS."),
    )
    webhook_url = forms.URLField(label=_("Webhook URL"), required=False, max_length=500, assume_scheme="https")
    webhook_secret = forms.CharField(
        label=_("Webhook secret"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Signs each webhook body (HMAC-SHA256, X-Taskops-Signature header). Never shown again."),
    )
    clear_webhook_secret = forms.BooleanField(label=_("Remove the webhook secret"), required=False)

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "enabled",
            "task_pattern",
            "condition",
            "threshold",
            "min_count",
            "window",
            "cooldown",
            "channels",
            "emails",
            "webhook_url",
            "webhook_secret",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Compared with a blank initial: typing a secret is a change, leaving it blank is not.
        self.initial["webhook_secret"] = ""
        if "task_pattern" in self.fields:  # the admin leaves out fields a read-only user may not edit
            # An empty pattern is the model's to refuse, with a message that says what to type.
            self.fields["task_pattern"].required = False
        if "webhook_secret" in self.fields:
            self.fields["webhook_secret"].help_text = self.secret_help()

    def secret_help(self) -> str:
        """The secret's help text, saying whether one is stored (never what it is)."""
        if self.instance.pk and self.instance.webhook_secret:
            return str(_("A secret is set: leave this blank to keep it, or type a new one. It is never shown."))
        return str(self.fields["webhook_secret"].help_text)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("clear_webhook_secret"):
            cleaned["webhook_secret"] = ""
        elif not cleaned.get("webhook_secret"):
            cleaned["webhook_secret"] = self.instance.webhook_secret  # blank: keep what is stored
        return cleaned
