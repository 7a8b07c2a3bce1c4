"""One stack of real processes per test session (stack.py): our own PostgreSQL and Redis servers, gunicorn,
a supervised Celery worker and beat. Trial counts come from HLEKKR_FAULT_TRIALS (CI: 20 each;
scripts/fault_trials.py: 100)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.reliability.faults import WebhookReceiver
from tests.reliability.stack import Stack, servers, wait_until


def trials(default: int = 20) -> int:
    return int(os.environ.get("HLEKKR_FAULT_TRIALS", default))


def _create_client_key(stack: Stack) -> str:
    out = stack.manage(
        "shell",
        "-c",
        "from hlekkr.accounts.models import User; from hlekkr.accounts.services import api_key_create; "
        "u = User.objects.create_user('faults', password='faults-password-1234', role='client'); "
        "print(api_key_create(user=u, name='faults', scopes=['media:read', 'media:write']).plaintext)",
    )
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


@pytest.fixture(scope="session")
def fault_stack(receiver: WebhookReceiver) -> Iterator[Stack]:
    with servers() as (root, pg, broker, cache):
        stack = Stack(root, pg, broker, cache)
        stack.manage("migrate", "--noinput")
        # Trials upload faster than a client's 30/min: raise the windows the trials go through (not `auth`).
        pg.sql(
            "UPDATE ratelimit_ratelimitpolicy SET rate = (100000 + id)::text || '/m' WHERE \"group\" IN ('upload', 'read', 'webhooks')"
        )
        stack.api_key = _create_client_key(stack)
        try:
            stack.start_web()
            # Two workers: faults alternate between them, so one carries the work while the other restarts.
            stack.start_worker("worker", concurrency=1)
            stack.start_worker("worker2", concurrency=1)
            stack.start_beat()
            for name in stack.worker_names():
                log = root / f"{name}.log"
                wait_until(lambda log=log: " ready." in log.read_text(errors="replace"), timeout=120, what=name)
            status, body, _ = stack.http(
                "POST",
                "/api/v1/webhooks/",
                body=f'{{"url": "{receiver.url}", "events": ["analysis.completed"]}}'.encode(),
                headers={**stack.auth(), "Content-Type": "application/json"},
            )
            assert status == 201, body
            yield stack
        finally:
            stack.stop_all()
