"""The app config: installs the codec into kombu, connects the recorder, registers the checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks as django_checks
from django.utils.translation import gettext_lazy as _


class TaskopsConfig(AppConfig):
    name = "taskops"
    verbose_name = _("Task operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, as Django wants: these modules import the models.
        from taskops import alerts, checks, intake, recording, wire
        from taskops.conf import taskops_settings
        from taskops.wire import lanes

        wire.install()
        lanes.install_all()
        recording.connect()
        intake.connect()
        alerts.connect()
        attrs_classes = taskops_settings.ATTRS_CLASSES
        wire.register_configured_classes(attrs_classes if isinstance(attrs_classes, list | tuple) else [])
        for check in checks.ALL:
            django_checks.register(check, "taskops")
