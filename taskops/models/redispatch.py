"""The audit of operator actions that publish tasks again, and their work items."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Redispatch(models.Model):
    """One operator action that publishes tasks again: who, when, why, what, and what came of it.

    Its :class:`RedispatchItem` rows are the work, one per call to publish, so
    that a fan-out stopped midway resumes where it stopped and publishes
    nothing twice under different task ids.
    """

    class Kind(models.TextChoices):
        REPLAY = "replay", _("Replay of dispatches")
        OBJECTS = "objects", _("Task for objects")

    class Outcome(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Publishing")
        DONE = "done", _("Done")
        PARTIAL = "partial", _("Done, some skipped")
        FAILED = "failed", _("Stopped (can be resumed)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    reason = models.TextField(_("reason"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    #: The task of every call (blank for a replay of dispatches of several tasks).
    task_name = models.CharField(_("task"), max_length=255, blank=True)
    #: What every call shares: ``{"model": label, "parameter": name, "many": bool, "kwargs": <encoded JSON>}``.
    plan = models.JSONField(_("plan"), default=dict, blank=True)
    #: Publish options: ``{"queue": ..., "countdown": ..., "priority": ...}``.
    options = models.JSONField(_("options"), default=dict, blank=True)
    total = models.PositiveIntegerField(_("calls"), default=0)
    published = models.PositiveIntegerField(_("published"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.QUEUED)
    error = models.TextField(_("error"), blank=True)
    #: The last sign of life of whoever publishes it (queued, a batch published): a queued or publishing
    #: re-dispatch without one for ``REDISPATCH_STALLED_AFTER`` seconds has stalled and may be resumed.
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)

    class Meta:
        verbose_name = _("re-dispatch")
        verbose_name_plural = _("re-dispatches")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def done(self) -> int:
        return self.published + self.skipped


class RedispatchItem(models.Model):
    """One call of a :class:`Redispatch`: a source dispatch to replay, or an object (or list) to run the task for."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        PUBLISHED = "published", _("Published")
        SKIPPED = "skipped", _("Skipped")

    redispatch = models.ForeignKey(Redispatch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(_("position"))
    #: The source dispatch's id (replay), or the object's pk as text (a JSON list of pks for a list parameter).
    target = models.TextField(_("target"))
    #: Chosen before publishing (deterministic): a resumed fan-out reuses it.
    task_id = models.CharField(_("task id"), max_length=255)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    note = models.CharField(_("note"), max_length=255, blank=True)
    #: The latest attempt (its ``retries``) a worker started: a second delivery of it is a duplicate, skipped.
    started_attempt = models.PositiveIntegerField(_("started attempt"), null=True, blank=True)

    class Meta:
        verbose_name = _("re-dispatch item")
        verbose_name_plural = _("re-dispatch items")
        constraints = [
            models.UniqueConstraint(fields=["redispatch", "position"], name="taskops_redispatch_item_position"),
        ]
        indexes = [models.Index(fields=["redispatch", "state", "position"], name="taskops_redispatch_item_todo")]

    def __str__(self) -> str:
        return f"{self.redispatch_id}/{self.position}"


class RedispatchTicket(models.Model):
    """What an operator chose in the admin, kept on the server until it is used (never in a URL).

    A selection made on a model's changelist (up to ``REDISPATCH_MAX_CALLS``
    pks) on its way to the generic form, or a checked re-dispatch waiting for
    its confirmation. A confirmation is used once: the publish deletes it in
    one statement, so a second submit (a double click, a replayed request)
    finds nothing to confirm and publishes nothing.
    """

    class Purpose(models.TextChoices):
        SELECTION = "selection", _("Selection")
        CONFIRMATION = "confirmation", _("Confirmation")

    token = models.CharField(_("token"), max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+"
    )
    purpose = models.CharField(_("purpose"), max_length=16, choices=Purpose.choices)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    #: A selection's model label (``app_label.modelname``).
    model = models.CharField(_("model"), max_length=100, blank=True)
    #: A selection: ``{"pks": [...]}``; a confirmation: what was confirmed (the checked form's data).
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("re-dispatch ticket")
        verbose_name_plural = _("re-dispatch tickets")

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.token[:8]}"
