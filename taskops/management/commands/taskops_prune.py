"""Delete finished dispatches (and their refs) older than some days, in batches."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from taskops.conf import taskops_settings
from taskops.models import FINISHED_STATES, Dispatch, ObjectRef


def days(text: str) -> int:
    """``--older-than``: a whole number of days, 1 or more (0 would delete today's finished work)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more days, got {value}")
    return value


class Command(BaseCommand):
    help = "Delete finished dispatches enqueued more than --older-than days ago, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=days,
            required=True,
            metavar="DAYS",
            dest="older_than",
            help="Delete finished dispatches enqueued more than DAYS days ago (1 or more).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", dest="dry_run", help="Only say how many would go; delete nothing."
        )

    def handle(self, *args: Any, older_than: int, dry_run: bool, **options: Any) -> None:
        cutoff = timezone.now() - dt.timedelta(days=older_than)
        # enqueued_at is indexed; finished states only, so nothing still running disappears.
        old = Dispatch.objects.filter(enqueued_at__lt=cutoff, state__in=list(FINISHED_STATES))
        if dry_run:
            self.stdout.write(f"Would delete {old.count()} dispatch(es) enqueued before {cutoff:%Y-%m-%d %H:%M}.")
            return
        size = max(1, int(taskops_settings.PRUNE_BATCH_SIZE))
        deleted = 0
        while True:
            # One short transaction per batch: no lock is held for the whole run.
            ids = list(old.order_by("enqueued_at").values_list("pk", flat=True)[:size])
            if not ids:
                break
            with transaction.atomic():
                ObjectRef.objects.filter(dispatch_id__in=ids).delete()
                deleted += Dispatch.objects.filter(pk__in=ids).delete()[0]
        self.stdout.write(f"Deleted {deleted} dispatch(es) enqueued before {cutoff:%Y-%m-%d %H:%M}.")
