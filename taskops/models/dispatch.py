"""What taskops records: one ``Dispatch`` per task id, one ``ObjectRef`` per
model instance that the task's arguments referenced."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class State(models.TextChoices):
    """Celery's task states, plus ``SKIPPED`` (a staleness policy chose not to run)."""

    PENDING = "PENDING", _("Pending")
    RECEIVED = "RECEIVED", _("Received")
    STARTED = "STARTED", _("Started")
    RETRY = "RETRY", _("Retry")
    SUCCESS = "SUCCESS", _("Success")
    FAILURE = "FAILURE", _("Failure")
    REVOKED = "REVOKED", _("Revoked")
    REJECTED = "REJECTED", _("Rejected")
    IGNORED = "IGNORED", _("Ignored")
    SKIPPED = "SKIPPED", _("Skipped")


#: States after which nothing more happens to a dispatch.
FINISHED_STATES = frozenset({State.SUCCESS, State.FAILURE, State.REVOKED, State.REJECTED, State.IGNORED, State.SKIPPED})


class Drift(models.TextChoices):
    """How a referenced row compares, at execution, with what was dispatched."""

    PENDING = "pending", _("Not checked yet")
    UNCHANGED = "unchanged", _("Unchanged")
    CHANGED = "changed", _("Changed")
    MISSING = "missing", _("Missing")


class StalePolicy(models.TextChoices):
    """A task's ``on_stale`` option: what to do when a referenced row changed since dispatch."""

    RUN = "run", _("Run anyway")
    SKIP = "skip", _("Skip")
    RETRY = "retry", _("Retry with fresh rows")
    FAIL = "fail", _("Fail")


class MissingPolicy(models.TextChoices):
    """A task's ``on_missing`` option: what to do when a referenced row is gone."""

    FAIL = "fail", _("Fail")
    SKIP = "skip", _("Skip")


class Source(models.TextChoices):
    """Whose record a dispatch row holds.

    ``publisher`` once the publisher's record is written, whether it landed
    before the worker's writes or after them (it is written in the
    background); ``worker`` while the only record is the one the worker made
    from the message headers (the publisher crashed, its transaction rolled
    back, or its write has not landed yet).
    """

    PUBLISHER = "publisher", _("Publisher")
    WORKER = "worker", _("Worker (no row from the publisher)")


class Dispatch(models.Model):
    """One task id: what was sent, with which arguments, and what became of it."""

    task_id = models.CharField(_("task id"), max_length=255, unique=True)
    task_name = models.CharField(_("task"), max_length=255)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    #: The exact encoded JSON text of the positional arguments (replayable);
    #: when ``redacted``, the publisher's ``argsrepr`` instead.
    args = models.TextField(_("args"), default="[]")
    #: The exact encoded JSON text of the keyword arguments (replayable);
    #: when ``redacted``, the publisher's ``kwargsrepr`` instead.
    kwargs = models.TextField(_("kwargs"), default="{}")
    #: The publisher hid the arguments (Celery's ``argsrepr``/``kwargsrepr``): ``args`` and
    #: ``kwargs`` hold its reprs, not the arguments, and the dispatch cannot be replayed exactly.
    redacted = models.BooleanField(_("redacted"), default=False)
    queue = models.CharField(_("queue"), max_length=255, blank=True)
    eta = models.DateTimeField(_("ETA"), null=True, blank=True)
    expires = models.DateTimeField(_("expires"), null=True, blank=True)
    enqueued_at = models.DateTimeField(_("enqueued at"))
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    #: Start time minus the later of enqueue time and ETA.
    lag = models.DurationField(_("lag"), null=True, blank=True)
    runtime = models.DurationField(_("runtime"), null=True, blank=True)
    worker = models.CharField(_("worker"), max_length=255, blank=True)
    retries = models.PositiveIntegerField(_("retries"), default=0)
    parent_id = models.CharField(_("parent id"), max_length=255, blank=True)
    root_id = models.CharField(_("root id"), max_length=255, blank=True)
    #: Indexed for the search (with a pattern index on PostgreSQL, for its prefix).
    group_id = models.CharField(_("group id"), max_length=255, blank=True)
    #: Dispatched inside an open transaction: the worker may not see the rows yet.
    in_transaction = models.BooleanField(_("in transaction"), default=False)
    #: The worst drift of the dispatch's refs (denormalized for filtering).
    drift = models.CharField(_("drift"), max_length=16, choices=Drift.choices, default=Drift.PENDING)
    #: A ref is missing and the dispatch had the in-transaction hazard.
    likely_race = models.BooleanField(_("likely race"), default=False)
    ref_count = models.PositiveIntegerField(_("refs"), default=0)
    #: What a policy decided at start (a :class:`StalePolicy` value), if it had to.
    stale_action = models.CharField(_("stale action"), max_length=16, choices=StalePolicy.choices, blank=True)
    exception = models.TextField(_("exception"), blank=True)
    #: What taskops could not read from the message (an unknown header version, a malformed field).
    notes = models.TextField(_("notes"), blank=True)
    source = models.CharField(_("recorded by"), max_length=16, choices=Source.choices, default=Source.PUBLISHER)
    dispatched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("dispatched by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # a partial index (Meta): most rows have none
    )
    redispatch_of = models.ForeignKey(
        "self",
        verbose_name=_("re-dispatch of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="redispatches",
        db_index=False,  # a partial index (Meta): most rows have none
    )
    #: The operator action that published it (``taskops_redispatch``, the admin's form and actions).
    operation = models.ForeignKey(
        "Redispatch",
        verbose_name=_("operator action"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dispatches",
        db_index=False,  # a partial index (Meta): most rows have none
    )

    class Meta:
        verbose_name = _("dispatch")
        verbose_name_plural = _("dispatches")
        ordering = ["-enqueued_at"]
        permissions = [("redispatch_dispatch", _("Can re-dispatch tasks"))]
        indexes = [
            models.Index(fields=["-enqueued_at"], name="taskops_dispatch_enq"),
            models.Index(fields=["task_name", "-enqueued_at"], name="taskops_dispatch_task_enq"),
            models.Index(fields=["state", "-enqueued_at"], name="taskops_dispatch_state_enq"),
            # The drift filter counts only dispatches with objects: its count (capped) and its
            # first page read this index alone, even at millions of rows.
            models.Index(
                fields=["drift", "-enqueued_at", "-id"],
                name="taskops_dispatch_drift_refs",
                condition=Q(ref_count__gt=0),
            ),
            models.Index(fields=["queue", "-enqueued_at"], name="taskops_dispatch_queue_enq"),
            # Every index is written at each insert and at each update that cannot be
            # HOT (the worker's start and end change ``state``): the columns that are
            # empty on most rows are indexed only where they are set.
            models.Index(fields=["root_id"], name="taskops_dispatch_root", condition=~Q(root_id="")),
            # One index for the search's equality and prefix (a pattern index on PostgreSQL).
            models.Index(
                fields=["group_id"],
                name="taskops_dispatch_group",
                opclasses=["varchar_pattern_ops"],
                condition=~Q(group_id=""),
            ),
            models.Index(fields=["parent_id"], name="taskops_dispatch_parent", condition=~Q(parent_id="")),
            models.Index(
                fields=["dispatched_by"], name="taskops_dispatch_by", condition=Q(dispatched_by__isnull=False)
            ),
            models.Index(
                fields=["redispatch_of"], name="taskops_dispatch_of", condition=Q(redispatch_of__isnull=False)
            ),
            models.Index(fields=["operation"], name="taskops_dispatch_op", condition=Q(operation__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}]"

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @property
    def task_result(self) -> Any:
        """The django-celery-results ``TaskResult`` of this task id, or None.

        Looked up by task id, with no foreign key: taskops works, and this
        returns None, when django_celery_results is not installed.
        """
        model = task_result_model()
        return None if model is None else model._default_manager.filter(task_id=self.task_id).first()


def task_result_model() -> type[models.Model] | None:
    """django-celery-results' ``TaskResult`` model, or None when that app is not installed.

    Taken from the app registry, never imported: importing
    ``django_celery_results.models`` without the app installed stops the
    process ("doesn't declare an explicit app_label").
    """
    if not apps.is_installed("django_celery_results"):
        return None
    return apps.get_model("django_celery_results", "TaskResult")


class ObjectRef(models.Model):
    """A model instance referenced by a dispatch's arguments, and its drift."""

    # Neither foreign key has an index of its own: each leads one that serves it
    # (the unique (dispatch, argument), and taskops_ref_object).
    dispatch = models.ForeignKey(Dispatch, on_delete=models.CASCADE, related_name="refs", db_index=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+", db_index=False)
    object_pk = models.CharField(_("object pk"), max_length=255)
    #: Where in the arguments it stood, e.g. ``args[0]`` or ``kwargs.report.question``.
    argument = models.CharField(_("argument"), max_length=255, blank=True)
    #: ``str()`` of the instance at dispatch, for display without a query.
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    #: Short per-field digests at dispatch: ``{field: digest}``.
    digests = models.JSONField(_("digests"), default=dict, blank=True)
    #: The id of the key the digests were made with (derived from ``SECRET_KEY``).
    digest_key = models.CharField(_("digest key"), max_length=16, blank=True)
    #: Values at dispatch, only for fields a setting names: ``{field: value}``.
    values = models.JSONField(_("values"), default=dict, blank=True)
    drift = models.CharField(_("drift"), max_length=16, choices=Drift.choices, default=Drift.PENDING)
    changed_fields = models.JSONField(_("changed fields"), default=list, blank=True)
    likely_race = models.BooleanField(_("likely race"), default=False)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("object reference")
        verbose_name_plural = _("object references")
        indexes = [
            # No index on a column the worker's start writes (drift, ...): that
            # update of the refs stays HOT, a new row version and no index entries.
            models.Index(fields=["content_type", "object_pk", "-dispatch"], name="taskops_ref_object"),
        ]
        constraints = [
            # The publisher and a worker may both write a dispatch's refs (the
            # uncommitted-transaction race): they merge on this key.
            models.UniqueConstraint(fields=["dispatch", "argument"], name="taskops_ref_unique_argument"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type.app_label}.{self.content_type.model}:{self.object_pk}"
