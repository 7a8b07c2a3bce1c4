"""Create (or reset) the demo users admin, lead, moderator and client for the embedded run."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from hlekkr.accounts.models import Role, User
from hlekkr.accounts.services import user_create
from hlekkr.audit.services import audit_record

DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("lead", Role.LEAD),
    ("moderator", Role.MODERATOR),
    ("client", Role.CLIENT),
)


class Command(BaseCommand):
    help = "Create demo users (password from HLEKKR_DEMO_PASSWORD, else generated and printed)."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("HLEKKR_DEMO_PASSWORD") or secrets.token_urlsafe(12)
        generated = not os.environ.get("HLEKKR_DEMO_PASSWORD")
        for username, role in DEMO_USERS:
            with transaction.atomic():
                user = User.objects.filter(username=username).first()
                if user is None:
                    user_create(username=username, password=password, role=role)
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    audit_record(actor=None, action="user.password_reset", target=user, payload={"by": "demo setup"})
        self.stdout.write(f"demo users: {', '.join(u for u, _ in DEMO_USERS)}")
        if generated:
            self.stdout.write(f"demo password (generated): {password}")
