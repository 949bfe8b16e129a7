from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TaskopsConfig(AppConfig):
    name = "taskops"
    verbose_name = _("Task operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks as django_checks

        from taskops import checks, codec, recording
        from taskops.conf import taskops_settings

        codec.install()
        recording.connect()
        attrs_classes = taskops_settings.ATTRS_CLASSES
        codec.register_configured_classes(attrs_classes if isinstance(attrs_classes, list | tuple) else [])
        for check in checks.ALL:
            django_checks.register(check, "taskops")
