"""A tiny URLconf for the logging tests: a view that logs and enqueues a task."""

from __future__ import annotations

import logging

from celery import shared_task
from django.http import HttpRequest, JsonResponse
from django.urls import path

from hlekkr.ops.logging import request_id_var

SEEN_IN_TASKS: list[str] = []
logger = logging.getLogger("tests.ops.view")


@shared_task(name="tests.ops.record_request_id")
def record_request_id() -> None:
    SEEN_IN_TASKS.append(request_id_var.get())
    logging.getLogger("tests.ops.task").warning("inside the task")


def log_and_enqueue(request: HttpRequest) -> JsonResponse:
    logger.warning("inside the view")
    record_request_id.delay()
    return JsonResponse({"ok": True})


urlpatterns = [path("log-and-enqueue/", log_and_enqueue)]
