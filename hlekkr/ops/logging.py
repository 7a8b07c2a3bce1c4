"""Request ids on every log line: set by the middleware, carried into Celery tasks in their headers."""

from __future__ import annotations

import contextvars
import logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _connection_failure(exc: BaseException | None) -> BaseException | None:
    """The connection failure in `exc`'s chain (broker, Redis, a refused or reset socket), if any."""
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KombuOperationalError | RedisConnectionError | RedisTimeoutError | ConnectionError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


class OutageTracebackFilter(logging.Filter):
    """A dependency that is away is an operational fact, not a bug: a record whose exception is a connection
    failure keeps its message plus the failure in one line, without the traceback (during a broker outage every
    upload's failed send logged three chained tracebacks). Other exceptions keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        failure = _connection_failure(exc)
        if failure is not None:
            detail = str(failure).strip().splitlines()[0][:200] if str(failure).strip() else ""
            record.msg = f"{record.getMessage()} ({type(failure).__name__}: {detail})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
