"""Test settings: the real settings, overridden only for speed and isolation."""

import os
import tempfile
from pathlib import Path

from hlekkr.settings import *  # noqa: F403
from hlekkr.settings import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each test process gets its own cache and file store (xdist runs two processes side by side).
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"test-{_worker}"}}
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix=f"hlekkr-test-{_worker}-"))
STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/files/"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Each test process has its own memory cache, and every writer and reader of a test runs in that process, so the
# detail cache's no-query read is sound here (it is off for the embedded run's per-process cache).
HLEKKR_DETAIL_CACHE_SHARED = True
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
# Request stats flush only when a test asks (hlekkr/ops): an implicit flush would add a query to pinned counts.
HLEKKR_REQUEST_STATS_FLUSH_SECONDS = 10**9
HLEKKR_REQUEST_STATS_FLUSH_AT_EXIT = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
