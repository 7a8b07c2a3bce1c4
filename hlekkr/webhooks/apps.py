from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _record_deliveries(event: str, payload: dict[str, Any]) -> None:
    from hlekkr.webhooks.services import webhook_deliveries_create

    webhook_deliveries_create(domain_event=event, payload=payload)


def _enqueue_deliveries(event: str, payload: dict[str, Any]) -> None:
    from hlekkr.webhooks import selectors, tasks
    from hlekkr.webhooks.services import event_id_for

    tasks.enqueue(selectors.pending_delivery_ids_for_event(event_id_for(event, payload)))


class WebhooksConfig(AppConfig):
    name = "hlekkr.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hlekkr.events import subscribe
        from hlekkr.webhooks.models import WEBHOOK_EVENTS

        for domain_event in set(WEBHOOK_EVENTS.values()):
            # Rows inside the publisher's transaction (nothing lost if the process dies after commit), the
            # first attempt right after commit; the beat task covers a lost enqueue.
            subscribe(domain_event, _record_deliveries, after_commit=False)
            subscribe(domain_event, _enqueue_deliveries, after_commit=True)
