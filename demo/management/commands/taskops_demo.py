"""Demo data and demo traffic for ``make run``.

``taskops_demo seed`` creates a few questions with answers and comments,
two alert rules that the traffic trips (rows deleted while their task
waits, tasks that start late), and, in development mode only (``DEBUG``
on), a demo superuser ``admin`` with a random password that it prints once: a fixed demo password is a
login for anyone who reaches the server, wherever it happens to listen. ``taskops_demo traffic`` keeps
dispatching the demo tasks, and on purpose edits or deletes some rows while
their tasks wait, so that the dashboard has stale work to show.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from demo import tasks
from demo.models import Answer, Comment, Question
from demo.reports import ThreadReport
from taskops.models import AlertRule, Channel, Condition

DEMO_USERNAME = "admin"
#: The fixed password earlier versions gave the demo superuser; seed replaces it.
OLD_DEMO_PASSWORD = "admin"

TOPICS = [
    ("How do I pass a model instance to a Celery task?", "I keep passing ids around. Is there a safer way?"),
    ("Why did my task see old data?", "The task ran after the user edited the row."),
    ("Task cannot find the row I just created", "DoesNotExist, but the row is there a second later."),
    ("Retry a task for a list of objects", "Our support team needs to re-run a task for some users."),
    ("Is pickle safe as a Celery serializer?", "A colleague says it is fine inside our network."),
]
ANSWER_BODIES = [
    "Pass the primary key and fetch it in the task.",
    "Use transaction.on_commit so the worker sees committed rows.",
    "Never use pickle: a message on the broker becomes code execution.",
    "Cheap viagra here, click now",  # rejected by moderate_answer
    "Check the lag between enqueue and start; it tells you how stale the data can be.",
    "Group the objects by model and fetch them with one query each.",
]

#: Alert rules the demo traffic trips: on the dashboard and in the log.
DEMO_RULES: list[dict[str, Any]] = [
    {
        "name": "Rows gone before their task ran",
        "task_pattern": "demo.tasks.*",
        "condition": Condition.ANY_MISSING,
        "channels": [Channel.DASHBOARD, Channel.LOG],
    },
    {
        "name": "Tasks start late",
        "task_pattern": "demo.tasks.*",
        "condition": Condition.LAG_P95,
        "threshold": 5,
        "min_count": 5,
        "channels": [Channel.DASHBOARD, Channel.LOG],
    },
]


class Command(BaseCommand):
    help = "Create demo data (seed) or keep dispatching demo tasks (traffic)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["seed", "traffic"])
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between traffic rounds.")
        parser.add_argument("--rounds", type=int, default=0, help="Traffic rounds to run (0: until stopped).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for repeatable traffic.")

    def handle(self, *args: Any, action: str, interval: float, rounds: int, seed: int | None, **options: Any) -> None:
        rng = random.Random(seed)
        if action == "seed":
            self.seed_data()
        else:
            if not Question.objects.exists():
                raise CommandError("No demo data: run `manage.py taskops_demo seed` first.")
            self.run_traffic(rng, interval=interval, rounds=rounds)

    def seed_superuser(self) -> None:
        """The demo login: development mode only, a password generated here and printed once."""
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo superuser (create one with `manage.py createsuperuser`).")
            return
        manager = get_user_model()._default_manager
        user = manager.filter(username=DEMO_USERNAME).first()
        if user is not None and not user.check_password(OLD_DEMO_PASSWORD):
            self.stdout.write(
                f"Demo superuser {DEMO_USERNAME!r} exists; its password was printed when it was created "
                f"(`DEBUG=1 python manage.py changepassword {DEMO_USERNAME}` sets another)."
            )
            return
        password = secrets.token_urlsafe(12)
        if user is None:
            manager.create_superuser(DEMO_USERNAME, "admin@example.com", password)
        else:  # created by an earlier version with the well-known password
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(
            self.style.SUCCESS(f"Demo superuser: {DEMO_USERNAME} / {password}")
            + f"  (shown this once; `DEBUG=1 python manage.py changepassword {DEMO_USERNAME}` sets another)"
        )

    def seed_data(self) -> None:
        self.seed_superuser()
        if Question.objects.exists():
            self.stdout.write("Demo data already present.")
            return
        with transaction.atomic():
            for index, (title, body) in enumerate(TOPICS):
                question = Question.objects.create(title=title, body=body)
                for offset, answer_body in enumerate(ANSWER_BODIES[: 2 + index % 4]):
                    answer = Answer.objects.create(question=question, body=answer_body, score=(index + offset) % 7)
                    Comment.objects.create(answer=answer, body="Thanks, that helped." if offset else "Is this spam?")
            for rule in DEMO_RULES:
                AlertRule.objects.create(**rule)
        created = f"Created {len(TOPICS)} questions with answers and comments, {len(DEMO_RULES)} alert rules."
        self.stdout.write(self.style.SUCCESS(created))

    def run_traffic(self, rng: random.Random, *, interval: float, rounds: int) -> None:
        done = 0
        while rounds == 0 or done < rounds:
            try:
                self.traffic_round(rng)
            except Exception as exc:  # noqa: BLE001 - demo traffic must keep going
                self.stderr.write(f"traffic round failed: {exc!r}")
            done += 1
            time.sleep(interval)

    def traffic_round(self, rng: random.Random) -> None:
        """Dispatch a few tasks; now and then change or delete what they wait on."""
        question = Question.objects.order_by("?").first()
        if question is None:
            return
        answers = list(question.answers.all())
        tasks.count_words.delay("demo.question", question.pk)
        tasks.notify_followers.delay(question, "New answers are in.")
        tasks.rebuild_summary.apply_async((question, answers), countdown=rng.choice([0, 1, 3]))
        tasks.summarize_thread.delay(ThreadReport(question=question, requested_at=timezone.now(), top_n=2))
        answer = Answer.objects.create(question=question, body=rng.choice(ANSWER_BODIES), score=rng.randint(0, 9))
        tasks.moderate_answer.apply_async((answer,), countdown=2)
        roll = rng.random()
        if roll < 0.3:  # the row changes while its task waits: drift "changed"
            answer.body += " (edited)"
            answer.save(update_fields=["body", "updated_at"])
        elif roll < 0.4:  # the row disappears while its task waits: drift "missing"
            answer.delete()
        self.stdout.write(f"{dt.datetime.now():%H:%M:%S} dispatched 5 tasks about question {question.pk}")
