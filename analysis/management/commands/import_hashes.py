"""manage.py import_hashes <bank> <csv>: load PDQ hashes into a hash bank.

CSV columns: pdq_hash[,quality,label] (a header row naming pdq_hash is optional). Hashes are 64 hex
characters (256 bits); malformed rows are reported and skipped, hashes already in the bank (or repeated in the
file) are skipped as duplicates. A missing bank is created only when --kind is given.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from analysis.models import BankedHash, BankKind, HashBank
from hlekkr.audit.services import audit_record

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
BATCH = 1000


class Command(BaseCommand):
    help = "Import PDQ hashes (CSV: pdq_hash[,quality,label]) into a hash bank."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bank", help="hash bank name (slug)")
        parser.add_argument("csv_path", help="CSV file with pdq_hash[,quality,label] rows")
        parser.add_argument("--kind", choices=BankKind.values, help="create the bank with this kind if missing")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["csv_path"])
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file")
        bank = HashBank.objects.filter(name=options["bank"]).first()
        if bank is None:
            if not options["kind"]:
                raise CommandError(f"no hash bank {options['bank']!r}; pass --kind to create it")
            bank = HashBank.objects.create(name=options["bank"], kind=options["kind"])
            audit_record(actor=None, action="hash_bank.created", target=bank, payload={"kind": bank.kind})

        existing = set(BankedHash.objects.filter(bank=bank).values_list("pdq_hash", flat=True))
        counts = {"imported": 0, "duplicates": 0, "invalid": 0}
        problems: list[str] = []
        pending: list[BankedHash] = []
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for line_number, row in enumerate(csv.reader(handle), start=1):
                if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                    continue
                if line_number == 1 and row[0].strip().lower() == "pdq_hash":
                    continue
                parsed = _parse(row)
                if isinstance(parsed, str):
                    counts["invalid"] += 1
                    problems.append(f"line {line_number}: {parsed}")
                    continue
                pdq, quality, label = parsed
                if pdq in existing:
                    counts["duplicates"] += 1
                    continue
                existing.add(pdq)
                pending.append(BankedHash(bank=bank, pdq_hash=pdq, quality=quality, label=label))
        with transaction.atomic():
            for start in range(0, len(pending), BATCH):
                BankedHash.objects.bulk_create(pending[start : start + BATCH], ignore_conflicts=True)
            counts["imported"] = len(pending)
            audit_record(actor=None, action="hash_bank.imported", target=bank, payload={**counts, "file": path.name})
        for problem in problems[:20]:
            self.stderr.write(problem)
        if len(problems) > 20:
            self.stderr.write(f"... and {len(problems) - 20} more invalid rows")
        self.stdout.write(
            f"bank {bank.name}: imported {counts['imported']}, skipped {counts['duplicates']} duplicates, "
            f"{counts['invalid']} invalid"
        )


def _parse(row: list[str]) -> tuple[str, int | None, str] | str:
    pdq = row[0].strip().lower()
    if not _HEX64.match(pdq):
        return "pdq_hash must be 64 hexadecimal characters"
    quality: int | None = None
    if len(row) > 1 and row[1].strip():
        try:
            quality = int(row[1])
        except ValueError:
            return "quality must be an integer"
        if not 0 <= quality <= 100:
            return "quality must be between 0 and 100"
    label = row[2].strip()[:200] if len(row) > 2 else ""
    return pdq, quality, label
