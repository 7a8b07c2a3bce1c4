"""manage.py video_signature <video> [-o FILE] [--label L]: the frame-level PDQ signature of a video, as a file
`import_hashes --video` banks (analysis/detectors/video_signature.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.detectors.video_signature import compute_signature, signature_document


class Command(BaseCommand):
    help = "Write a video's frame-level PDQ signature (JSON) for import_hashes --video."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("video")
        parser.add_argument("-o", "--output", help="where to write it (default: standard output)")
        parser.add_argument("--label", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["video"])
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file")
        try:
            frames = compute_signature(path)
        except Exception as exc:  # PyAV raises its own errors for anything that is not a video
            raise CommandError(f"{path} could not be decoded as a video ({exc.__class__.__name__})") from None
        if not frames:
            raise CommandError(f"{path} has no video frames")
        text = json.dumps(signature_document(frames, label=options["label"] or path.stem))
        if options["output"]:
            Path(options["output"]).write_text(text)
            self.stdout.write(f"{len(frames)} frames -> {options['output']}")
        else:
            self.stdout.write(text)
