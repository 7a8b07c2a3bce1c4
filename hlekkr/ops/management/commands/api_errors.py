"""`manage.py api_errors --write` renders docs/api-errors.md from hlekkr/errors.py; `--check` fails when stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hlekkr.errors import render_markdown


class Command(BaseCommand):
    help = "Render the API error-code catalogue (hlekkr/errors.py) into docs/api-errors.md, or check it is current."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--write", action="store_true", help="rewrite the document")
        action.add_argument("--check", action="store_true", help="exit 1 when the document is stale")
        parser.add_argument("--path", default=str(Path(settings.BASE_DIR) / "docs" / "api-errors.md"))

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        wanted = render_markdown()
        if options["write"]:
            path.write_text(wanted)
            self.stdout.write(f"wrote {path}")
            return
        if not path.exists() or path.read_text() != wanted:
            raise CommandError(f"{path} is stale: run python manage.py api_errors --write")
        self.stdout.write(f"{path} is current")
