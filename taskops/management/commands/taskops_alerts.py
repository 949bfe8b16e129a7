"""Evaluate the alert rules once, for cron and monitoring systems.

Prints the alerts opened and resolved by this round, then every alert still
open; exits with status 1 while any alert is open (acknowledged ones
included, unless ``--ignore-acknowledged``), 0 otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from taskops.alerts import evaluate
from taskops.models import Alert


class Command(BaseCommand):
    help = "Evaluate every enabled alert rule once; exit status 1 while alerts are open."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="One round, then exit (the only mode; accepted for cron lines that say so).",
        )
        parser.add_argument(
            "--ignore-acknowledged",
            action="store_true",
            dest="ignore_acknowledged",
            help="Exit 0 when every open alert has been acknowledged.",
        )

    def handle(self, *args: Any, ignore_acknowledged: bool, **options: Any) -> None:
        result = evaluate()
        for alert in result.opened:
            self.stdout.write(f"opened: {describe(alert)}")
        for alert in result.resolved:
            self.stdout.write(f"resolved: {describe(alert)}")
        still_open = Alert.objects.exclude(status=Alert.Status.RESOLVED).select_related("rule").order_by("pk")
        for alert in still_open:
            self.stdout.write(f"{alert.status}: {describe(alert)}")
        urgent = still_open.filter(status=Alert.Status.OPEN) if ignore_acknowledged else still_open
        if urgent.exists():
            self.stdout.flush()
            sys.exit(1)
        self.stdout.write("no open alerts")


def describe(alert: Alert) -> str:
    return f"{alert.rule.name} [{alert.subject}] value {alert.value:g}, seen {alert.count} time(s)"
