"""Give every moderator, lead and admin a review profile (defaults from the role); safe to run repeatedly."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from review.services import moderator_profiles_ensure_all


class Command(BaseCommand):
    help = "Create missing moderator profiles for users with a moderator, lead or admin role."

    def handle(self, *args: Any, **options: Any) -> None:
        created = moderator_profiles_ensure_all()
        self.stdout.write(f"moderator profiles created: {created}")
