"""The stored item as a detector input: a local copy of its bytes, described by the facts media recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analysis.detectors.base import MediaInput
from media.models import MediaItem
from media.storage import local_copy


@contextmanager
def media_input_for(item: MediaItem) -> Iterator[MediaInput]:
    """Stream the original to a temporary file for the duration of the block (removed afterwards)."""
    with local_copy(item) as path:
        yield MediaInput(
            path=Path(path),
            kind=item.kind,  # type: ignore[arg-type]
            mime=item.mime_type,
            size=path.stat().st_size,
            sha256=item.sha256,
            filename=item.original_filename,
        )
