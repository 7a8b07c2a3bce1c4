"""Django's PostgreSQL backend without a `SELECT 1` on every request.

With CONN_HEALTH_CHECKS Django pings a persistent connection before the first query of every request: a second
PostgreSQL round trip on a read that needs one (the media list: 1 query + 1 ping). Here the ping is made only
when the connection has been idle for at least HLEKKR_DB_HEALTH_CHECK_IDLE_SECONDS (settings; default 5; 0 pings
on every request as Django does): a connection that served a request moments ago is almost always alive, and the
ones that die quietly (a server-side idle timeout, a NAT or proxy dropping idle flows) die while idle, where the
ping still runs.

A connection can still die between two busy requests (PostgreSQL restarted or failed over): the unpinged first
statement then fails. If it is a SELECT outside a transaction (nothing sent before it can be lost, reading again
is harmless) it is sent once more on a new connection, so a read behaves as it did with the ping. Anything else
(a write, or the first statement of a transaction) fails as any database error does: the request becomes a 503
with Retry-After (hlekkr/api.py), the connection is closed when the request ends, and the client's retry gets a
new one. That is the trade-off: after a restart, a write on a connection used in the last few seconds is a 503
to retry instead of a silent reconnect; a database that stays away is a 503 either way.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_boundary = 0.0  # when close_old_connections last ran: a request's start or end
        self.unchecked = False  # the health check was skipped and no statement has proved the connection yet
        self.health_check_idle_seconds = float(getattr(settings, "HLEKKR_DB_HEALTH_CHECK_IDLE_SECONDS", 0.0))

    def connect(self) -> None:
        super().connect()
        self.unchecked = False

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this at each request's start and end (close_old_connections); the gap between the end of
        # one request and the start of the next is how long the connection sat idle.
        super().close_if_unusable_or_obsolete()
        now = time.monotonic()
        idle, self.last_boundary = now - self.last_boundary, now
        checked: bool = self.health_check_done  # type: ignore[has-type]
        if self.connection is not None and not checked and idle < self.health_check_idle_seconds:
            self.health_check_done = True
            self.unchecked = True

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return RetryingCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> CursorDebugWrapper:
        return RetryingCursorDebugWrapper(cursor, self)


class RetryingCursorWrapper(CursorWrapper):
    db: DatabaseWrapper

    def execute(self, sql: Any, params: Any = None) -> Any:
        db = self.db
        if not db.unchecked:
            return super().execute(sql, params)
        db.unchecked = False
        try:
            return super().execute(sql, params)
        except OperationalError:
            retry_safe = db.get_autocommit() and not db.in_atomic_block and _is_select(sql)
            if not retry_safe or getattr(self.cursor, "name", None):  # a server-side cursor: not ours to remake
                raise
        # The connection died since its last request: what the skipped health check would have found.
        db.close()
        db.ensure_connection()
        self.cursor = db.create_cursor()
        return super().execute(sql, params)

    def executemany(self, sql: Any, param_list: Any) -> Any:
        self.db.unchecked = False  # a write: never sent twice
        return super().executemany(sql, param_list)


class RetryingCursorDebugWrapper(CursorDebugWrapper, RetryingCursorWrapper):
    """The same with the query log on (DEBUG, assertNumQueries): the retried statement is logged once."""


def _is_select(sql: Any) -> bool:
    return isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"
