"""manage.py import_hashes <bank> <file>...: load PDQ hashes, or video signatures, into a hash bank.

CSV columns: pdq_hash[,quality,label] (a header row naming pdq_hash is optional). Hashes are 64 hex
characters (256 bits); malformed rows are reported and skipped, hashes already in the bank (or repeated in the
file) are skipped as duplicates. A missing bank is created only when --kind is given.

Video signature files (`--video`, or files ending in .json/.vpdq): Hlekkr's own (`manage.py video_signature`) or
vPDQ's text output; each file is one video (`--label` or the file's own label, else the file name). A signature
already in the bank is skipped; a malformed file is reported and skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from analysis.detectors.video_signature import SignatureFileError, read_signature_file
from analysis.models import BankedHash, BankedVideo, BankKind, HashBank
from hlekkr.audit.services import audit_record

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
BATCH = 1000


class Command(BaseCommand):
    help = "Import PDQ hashes (CSV: pdq_hash[,quality,label]) into a hash bank."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bank", help="hash bank name (slug)")
        parser.add_argument("paths", nargs="+", help="CSV of pdq_hash[,quality,label] rows, or video signature files")
        parser.add_argument("--kind", choices=BankKind.values, help="create the bank with this kind if missing")
        parser.add_argument("--video", action="store_true", help="the files are video signatures")
        parser.add_argument("--label", default="", help="label for imported videos (default: the file's)")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = [Path(p) for p in options["paths"]]
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path} is not a readable file")
        bank = self._bank(options)
        for path in paths:
            if options["video"] or path.suffix.lower() in (".json", ".vpdq"):
                self._import_video(bank, path, options["label"])
            else:
                self._import_csv(bank, path)

    def _import_video(self, bank: HashBank, path: Path, label: str) -> None:
        try:
            frames, own_label = read_signature_file(path)
        except (SignatureFileError, UnicodeDecodeError) as exc:
            self.stderr.write(f"{path.name}: {exc}")
            self.stdout.write(f"bank {bank.name}: imported 0 videos from {path.name}, 1 invalid")
            return
        rows = [[f.t, f.hash_hex, f.quality] for f in frames]
        digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
        if not frames or BankedVideo.objects.filter(bank=bank, signature_sha256=digest).exists():
            self.stdout.write(f"bank {bank.name}: {path.name} skipped ({'empty' if not frames else 'duplicate'})")
            return
        with transaction.atomic():
            video = BankedVideo.objects.create(
                bank=bank,
                label=(label or own_label or path.stem)[:200],
                duration_seconds=frames[-1].t + 1.0,
                frame_count=len(frames),
                frames=rows,
                signature_sha256=digest,
            )
            audit_record(
                actor=None,
                action="hash_bank.video_imported",
                target=bank,
                payload={"video_id": video.pk, "frames": len(frames), "file": path.name},
            )
        self.stdout.write(f"bank {bank.name}: imported video {video.label!r} ({len(frames)} frames)")

    def _bank(self, options: dict[str, Any]) -> HashBank:
        bank = HashBank.objects.filter(name=options["bank"]).first()
        if bank is None:
            if not options["kind"]:
                raise CommandError(f"no hash bank {options['bank']!r}; pass --kind to create it")
            bank = HashBank.objects.create(name=options["bank"], kind=options["kind"])
            audit_record(actor=None, action="hash_bank.created", target=bank, payload={"kind": bank.kind})
        return bank

    def _import_csv(self, bank: HashBank, path: Path) -> None:
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
