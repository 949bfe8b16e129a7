from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TaskopsConfig(AppConfig):
    name = "taskops"
    verbose_name = _("Task operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskops import codec, recording

        codec.install()
        recording.connect()
