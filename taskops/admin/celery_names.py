"""What the Celery app knows, as filter choices: task names and queue names.

Read from Celery's registry and configuration, never from the table: a
``DISTINCT`` over a million dispatches would cost more than the page. The
first call in a process imports the apps' task modules (as a worker does at
start); every later call is a dictionary read.
"""

from __future__ import annotations

from celery import current_app

#: Task names that Celery registers for itself, never dispatched by an app.
CELERY_BUILTIN_PREFIX = "celery."


#: Whether this process has imported the apps' task modules yet.
task_modules_imported = False


def import_task_modules() -> None:
    """Import the apps' task modules, once per process, as a worker does at start.

    A web process imports a tasks module only when something dispatches from
    it, so without this the registry would miss tasks nobody used yet.
    """
    global task_modules_imported
    if not task_modules_imported:
        current_app.loader.import_default_modules()
        task_modules_imported = True


def registered_task_names() -> list[str]:
    """The task names the Celery app knows, without Celery's own: no query."""
    import_task_modules()
    return sorted(name for name in current_app.tasks if not name.startswith(CELERY_BUILTIN_PREFIX))


def configured_queue_names() -> list[str]:
    """Queues named by the Celery configuration: the default, ``task_queues``, ``task_routes``."""
    conf = current_app.conf
    names = {conf.task_default_queue}
    for queue in conf.task_queues or ():
        names.add(getattr(queue, "name", str(queue)))
    routes = conf.task_routes
    for route in routes.values() if isinstance(routes, dict) else ():
        if isinstance(route, dict) and route.get("queue"):
            names.add(str(route["queue"]))
    return sorted(name for name in names if name)
