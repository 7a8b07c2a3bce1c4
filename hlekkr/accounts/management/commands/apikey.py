"""python manage.py apikey create|revoke|list: API keys from the command line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from hlekkr.accounts.models import ApiKey, User
from hlekkr.accounts.services import VALID_SCOPES, api_key_create, api_key_revoke
from hlekkr.exceptions import HlekkrError


class Command(BaseCommand):
    help = "Create, revoke or list API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("--name", default="cli")
        create.add_argument("--scopes", default="media:read,media:write", help=f"comma list of {sorted(VALID_SCOPES)}")
        create.add_argument("--days", type=int, default=None, help="expire after this many days")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix", help="the part between hk_ and the dot")
        listing = sub.add_parser("list")
        listing.add_argument("username", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except HlekkrError as exc:
            raise CommandError(exc.message) from exc

    def _create(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        expires = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        issued = api_key_create(user=user, name=options["name"], scopes=scopes, expires_at=expires)
        self.stdout.write(issued.plaintext)
        self.stderr.write("Store this key now; Hlekkr keeps only its hash.")

    def _revoke(self, options: dict[str, Any]) -> None:
        key = ApiKey.objects.filter(prefix=options["prefix"].removeprefix("hk_").split(".")[0]).first()
        if key is None:
            raise CommandError("no such key")
        api_key_revoke(api_key=key)
        self.stdout.write(f"revoked {key}")

    def _list(self, options: dict[str, Any]) -> None:
        keys = ApiKey.objects.select_related("user")
        if options.get("username"):
            keys = keys.filter(user__username=options["username"])
        for key in keys:
            state = "active" if key.is_active else ("revoked" if key.revoked_at else "expired")
            self.stdout.write(f"{key.prefix}\t{key.user.username}\t{state}\t{','.join(key.scopes)}\t{key.name}")
