"""Re-dispatch from the command line: the same checks and audit as the admin, as a named user.

    manage.py taskops_redispatch --dispatch 12 13 --reason "..." --user alice
    manage.py taskops_redispatch --task app.tasks.rebuild --model app.question --ids 1,2,3 --reason "..." --user alice
    manage.py taskops_redispatch --task app.tasks.rebuild --model app.question --filter-json '{"score__gte": 5}' ...

Exits non-zero, publishing nothing, when any check refuses.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldError, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from taskops.models import Dispatch, Redispatch
from taskops.redispatch import Options, Refused, for_objects, in_background, replay, submit
from taskops.redispatch.plan import Draft
from taskops.wire import CodecError, decode


class Command(BaseCommand):
    help = (
        "Publish tasks again, for dispatches (exact replay) or for model instances, with the admin's checks and audit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--dispatch", nargs="+", type=int, metavar="ID", help="Replay these dispatches (ids).")
        target.add_argument("--ids", metavar="PK,PK", help="With --model: the objects' primary keys, comma-separated.")
        target.add_argument(
            "--filter-json", dest="filter_json", metavar="JSON", help="With --model: a filter on the model, as JSON."
        )
        parser.add_argument("--task", help="The task to run for the objects (with --ids or --filter-json).")
        parser.add_argument("--model", help="The objects' model, as app_label.modelname.")
        parser.add_argument("--parameter", help="The task's parameter that takes the objects (when several could).")
        parser.add_argument(
            "--kwargs-json", dest="kwargs_json", default="{}", metavar="JSON", help="The task's other arguments (JSON)."
        )
        parser.add_argument("--reason", required=True, help="Why: kept in the audit.")
        parser.add_argument("--user", required=True, help="Who: the username the audit names (needs the permissions).")
        parser.add_argument("--queue", default="", help="Publish to this queue instead of the task's own.")
        parser.add_argument("--countdown", type=float, help="Seconds to wait before the tasks may run.")
        parser.add_argument("--priority", type=int, help="Message priority (0-255, where the broker has them).")
        parser.add_argument("--dry-run", action="store_true", dest="dry_run", help="Check and say what would happen.")

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        user = self.find_user(options["user"])
        publish = Options(options["queue"] or "", options["countdown"], options["priority"])
        try:
            draft = self.draft(user, publish, options)
        except Refused as refused:
            raise CommandError(f"refused: {refused}") from None
        what = f"{draft.total} call(s) of {draft.task_name or 'their own tasks'}"
        skips = "".join(f"; {count} skipped ({why})" for why, count in draft.skips.items())
        if dry_run:
            self.stdout.write(f"Would publish {what}{skips}.")
            return
        redispatch = submit(draft)
        if redispatch.outcome == Redispatch.Outcome.FAILED:
            raise CommandError(
                f"Re-dispatch #{redispatch.pk} stopped: {redispatch.error}; {redispatch.published} of "
                f"{redispatch.total} published. The rest can be resumed (admin: its page; code: resume())."
            )
        if in_background(draft):
            self.stdout.write(f"Re-dispatch #{redispatch.pk}: publishing {what} in the background{skips}.")
        else:
            self.stdout.write(
                f"Re-dispatch #{redispatch.pk}: published {redispatch.published}, skipped {redispatch.skipped}."
            )

    def find_user(self, name: str) -> Any:
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(name)
        except model.DoesNotExist:
            raise CommandError(f"refused: no user {name!r}") from None

    def draft(self, user: Any, publish: Options, options: dict[str, Any]) -> Draft:
        if options["dispatch"]:
            dispatches = Dispatch.objects.filter(pk__in=options["dispatch"])
            missing = sorted(set(options["dispatch"]) - set(dispatches.values_list("pk", flat=True)))
            if missing:
                raise Refused({"dispatches": [f"No dispatch with id {', '.join(map(str, missing))}."]})
            if options["task"]:
                dispatches = dispatches.filter(task_name=options["task"])
            return replay(user=user, dispatches=dispatches, reason=options["reason"], options=publish)
        if not options["task"] or not options["model"]:
            raise Refused({"__all__": ["--ids and --filter-json need --task and --model."]})
        return for_objects(
            user=user,
            task_name=options["task"],
            model_label=options["model"],
            reason=options["reason"],
            pks=[pk.strip() for pk in options["ids"].split(",") if pk.strip()] if options["ids"] else None,
            queryset=self.filtered(options["model"], options["filter_json"]) if options["filter_json"] else None,
            parameter=options["parameter"],
            kwargs=self.kwargs(options["kwargs_json"]),
            options=publish,
        )

    def filtered(self, label: str, text: str) -> Any:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise Refused({"model": [f"No model {label!r} is installed."]}) from None
        conditions = _json_object(text, "--filter-json")
        try:
            queryset = model._default_manager.filter(**conditions)
            queryset.exists()  # a bad field or value fails here, not later
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            raise Refused({"objects": [f"--filter-json: {exc}"]}) from None
        return queryset

    def kwargs(self, text: str) -> dict[str, Any]:
        _json_object(text, "--kwargs-json")
        try:
            value = decode(text)
        except CodecError as exc:
            raise Refused({"kwargs": [f"--kwargs-json: {exc}"]}) from None
        assert isinstance(value, dict)
        return value


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Refused({"__all__": [f"{option} is not JSON: {exc}"]}) from None
    if not isinstance(value, dict):
        raise Refused({"__all__": [f"{option} must be a JSON object."]})
    return value
