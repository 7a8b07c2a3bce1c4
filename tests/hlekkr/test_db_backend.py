"""hlekkr/db: the health-check ping only for idle connections, and a SELECT that meets a dead connection sent again."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection, transaction

from hlekkr.accounts.models import User

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pings() -> Iterator[mock.MagicMock]:
    with mock.patch.object(connection, "is_usable", wraps=connection.is_usable) as is_usable:
        yield is_usable


def _request_boundary(idle: float = 0.0) -> None:
    """What Django does between two requests (request_finished, then request_started), `idle` seconds apart."""
    close_old_connections()
    connection.last_boundary -= idle  # type: ignore[attr-defined]
    close_old_connections()


def _kill_our_connection() -> int:
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return int(pid)


def test_a_connection_used_moments_ago_is_not_pinged(pings):
    User.objects.count()
    _request_boundary()
    User.objects.count()
    assert pings.call_count == 0


def test_a_connection_idle_longer_than_the_setting_is_pinged_as_django_does(pings, settings):
    User.objects.count()
    _request_boundary(idle=connection.health_check_idle_seconds + 1)  # type: ignore[attr-defined]
    User.objects.count()
    assert pings.call_count == 1


def test_a_select_on_a_connection_that_died_between_requests_is_sent_again_on_a_new_one(pings):
    User.objects.count()
    dead = _kill_our_connection()
    _request_boundary()
    assert User.objects.count() == 0
    assert connection.connection.info.backend_pid != dead
    assert pings.call_count == 0


def test_a_transaction_on_a_dead_connection_fails_and_the_next_request_reconnects():
    User.objects.count()
    _kill_our_connection()
    _request_boundary()
    with pytest.raises(OperationalError), transaction.atomic():
        User.objects.create(username="w", email="w@example.org")
    _request_boundary()  # the end of the failed request closes the connection (errors_occurred)
    assert User.objects.count() == 0


def test_an_api_read_after_the_database_restarted_is_answered(api_as, client_a):
    """The read the health check protected: the dead connection costs a reconnect, not a 503."""
    api = api_as(client_a)
    _kill_our_connection()
    _request_boundary()
    response = api.get("/api/v1/media/")
    assert response.status_code == 200
