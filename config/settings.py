"""Settings of the project that hosts taskops and its demo.

Twelve-factor: everything that differs between a laptop and production comes
from the environment. With no environment at all, the project runs embedded:
SQLite and kombu's filesystem broker, both under ``var/``.

Secure by default: ``DEBUG`` is off unless the environment turns it on, and
with ``DEBUG`` off the project refuses to start without ``SECRET_KEY``.
Development mode is asked for explicitly (``DEBUG=1``; ``make run`` sets it);
only then does a missing ``SECRET_KEY`` fall back to a random key generated
once under ``var/``.

Production (see README, "Configuration"): set ``SECRET_KEY``,
``ALLOWED_HOSTS``, ``DATABASE_URL``, ``CELERY_BROKER_URL`` (and ``CACHE_URL``
for a Redis cache instead of a database table); behind TLS,
the secure-cookie, HSTS and redirect settings below are on with ``DEBUG``
off.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKOPS_VAR_DIR", BASE_DIR / "var")).resolve()


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on")."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list from the environment."""
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def development_secret_key(path: Path) -> str:
    """The key in ``path``, created there with a random key the first time.

    One key per checkout, never one in the repository: web, worker and beat
    must share it (sessions, and taskops' keyed snapshot digests), and a key
    that everyone can read signs anyone's session cookie. The key is written
    to a temporary file and linked into place, so processes that start
    together agree on one complete key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            temporary.unlink()
    return path.read_text().strip()


def secret_key_from_env(debug: bool) -> str:
    """``SECRET_KEY`` from the environment; without one, a development key, and only with ``debug``."""
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. In production, set SECRET_KEY in the environment to a long random "
            "string (python -c 'import secrets; print(secrets.token_urlsafe(50))'). For development, "
            "set DEBUG=1 (make run does): a key is then generated under var/."
        )
    return development_secret_key(VAR_DIR / "secret-key")


# Off unless asked for: a server started with no environment must not show
# tracebacks and settings to whoever reaches it.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key_from_env(DEBUG)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Above django.contrib.admin: taskops extends a few admin templates (the
    # "Task history" object tool on every change form, the index link).
    "taskops",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_results",
    "demo",
]
if django.VERSION < (6, 0):  # Django 6 has template partials built in.
    INSTALLED_APPS.append("template_partials")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env() -> dict[str, Any]:
    """``DATABASE_URL`` when set, else a SQLite file under ``var/``.

    SQLite gets WAL, a busy timeout and IMMEDIATE transactions so that the web
    process and prefork workers can write side by side without "database is
    locked" errors.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache_from_env() -> dict[str, Any]:
    """Redis at ``CACHE_URL`` when set, else a table of the database (``manage.py createcachetable``).

    Either way one cache that every web process shares: taskops keeps a
    metrics scrape in it for a few seconds, so that every process and scraper
    reads the same figures. Django's default, a cache in each process's
    memory, would give each process figures of its own (taskops.W050).
    """
    url = os.environ.get("CACHE_URL", "")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if url:
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// or rediss:// URL, not {url.partition(':')[0]}:...")
    return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}


CACHES = {"default": cache_from_env()}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise warns at startup when the folder is missing (a fresh checkout).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security: on by default whenever DEBUG is off (``manage.py check --deploy``
# is clean with the production environment that the README recommends).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Email: the console in development, SMTP in production (EMAIL_HOST, ...).
# Django 6.1 replaced the EMAIL_* settings by MAILERS.
_MAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
_SMTP_OPTIONS: dict[str, Any] = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": int(os.environ.get("EMAIL_PORT", "25")),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
}
if django.VERSION >= (6, 1):
    MAILERS: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": _MAIL_BACKEND,
            "OPTIONS": _SMTP_OPTIONS if _MAIL_BACKEND.endswith("smtp.EmailBackend") else {},
        }
    }
else:
    EMAIL_BACKEND = _MAIL_BACKEND
    EMAIL_HOST = _SMTP_OPTIONS["host"]
    EMAIL_PORT = _SMTP_OPTIONS["port"]
    EMAIL_HOST_USER = _SMTP_OPTIONS["username"]
    EMAIL_HOST_PASSWORD = _SMTP_OPTIONS["password"]
    EMAIL_USE_TLS = _SMTP_OPTIONS["use_tls"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "taskops@localhost")


# --- Celery (read by config/celery.py with namespace="CELERY") -------------


def filesystem_broker_options(root: Path) -> dict[str, Any]:
    """Transport options for kombu's filesystem broker rooted at ``root``.

    Producer and consumer share one data folder, so web, worker and beat on
    one machine see the same queue; ``control_folder`` makes broadcast
    (``celery inspect``, revoke, events) work too.
    """
    data = root / "data"
    control = root / "control"
    processed = root / "processed"
    for folder in (data, control, processed):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(data),
        "data_folder_out": str(data),
        "control_folder": str(control),
        "processed_folder": str(processed),
        "store_processed": False,
    }


CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    filesystem_broker_options(VAR_DIR / "broker") if CELERY_BROKER_URL.startswith("filesystem") else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
# Celery's Django fixup closes the database connection after every task unless
# this is set (measured 3x slower on PostgreSQL); connections are recycled
# after this many tasks instead.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

TASKOPS: dict[str, Any] = {"ALERTS_INTERVAL": 60}

# Beat (the Procfile's "beat") evaluates the alert rules every ALERTS_INTERVAL
# seconds; a round that no worker took up within an interval expires, so that
# a worker back from an outage runs one round, not a backlog of them.
CELERY_BEAT_SCHEDULE: dict[str, Any] = {
    "taskops-alerts": {
        "task": "taskops.alerts.evaluate",
        "schedule": float(TASKOPS["ALERTS_INTERVAL"]),
        "options": {"expires": TASKOPS["ALERTS_INTERVAL"]},
    },
}
