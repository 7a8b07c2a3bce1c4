"""Every write of the media app: uploads (direct, multipart and fetched from a URL), deletion, and the
latest-outcome fields that the analysis and review apps record through here (media never imports them).

Rules the functions keep (docs/media.md):
* a refused upload leaves nothing behind: no stored object and, for direct uploads, no row;
* the same owner sending the same bytes gets the stored item back (`duplicate=True`), and nothing is published;
* `media.stored` is published inside the storing transaction; analysis subscribes after commit;
* every upload, completion, rejection, abort and deletion is an audit event in the same transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.events import MEDIA_DELETED, MEDIA_FETCH_FINISHED, MEDIA_STORED, publish
from hlekkr.exceptions import (
    Conflict,
    HlekkrError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from media import conf, fetch, multipart, storage
from media.models import FetchState, MediaItem, MediaStatus, MultipartUpload, StorageIntent, UploadState, UrlFetch
from media.selectors import visible_to
from media.validation import (
    SNIFF_BYTES,
    Inspected,
    MediaFacts,
    StreamInspector,
    check_declared_allowed,
    sanitize_filename,
    sniff,
    validate_media,
)

logger = logging.getLogger(__name__)
HASH_CHUNK = 1024 * 1024
# Part-list mistakes the client can fix and retry; every other refusal at completion is final.
RETRYABLE_COMPLETE_CODES = {"missing_parts", "etag_mismatch", "parts_out_of_order"}


@dataclass
class UploadResult:
    item: MediaItem
    duplicate: bool = False


@dataclass
class UploadTicket:
    upload: MultipartUpload
    parts: list[dict[str, Any]] = field(default_factory=list)


# --- helpers -----------------------------------------------------------------------------------------------
def _audit_rejection(*, owner: User, error: HlekkrError, filename: str, size: int, declared: str, **extra: Any) -> None:
    audit_record(
        actor=owner,
        action="media.upload_rejected",
        object_type="media.mediaitem",
        object_id=str(extra.pop("media_id", "")),
        payload={"code": error.code, "filename": filename, "size": size, "declared_content_type": declared, **extra},
    )


def _apply_facts(item: MediaItem, facts: MediaFacts) -> None:
    item.mime_type = facts.mime_type
    item.kind = facts.kind
    item.width = facts.width
    item.height = facts.height
    item.duration_seconds = facts.duration_seconds


def _stored_payload(item: MediaItem, *, queue: str = "interactive") -> dict[str, Any]:
    return {"media_id": str(item.id), "owner_id": item.owner_id, "kind": item.kind, "queue": queue}


def _sha256_of(fh: Any) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _live_duplicate(owner: User, sha256: str) -> MediaItem | None:
    return MediaItem.objects.filter(owner=owner, sha256=sha256, status=MediaStatus.STORED).first()


def _delete_object(key: str) -> None:
    try:
        if key and default_storage.exists(key):
            default_storage.delete(key)
    except Exception:  # cleanup must not hide the original error
        logger.exception("could not delete stored object %s", key)


def _intend(*, media_id: Any, key: str, s3_upload_id: str = "", multipart_upload_id: Any = None) -> StorageIntent:
    """Record bytes about to change in storage; committed at once, so a process killed after the storage call
    leaves a trace for media_storage_sweep_orphans."""
    return StorageIntent.objects.create(
        media_id=media_id, key=key, s3_upload_id=s3_upload_id, multipart_upload_id=multipart_upload_id
    )


def _forget(intent: StorageIntent) -> None:
    StorageIntent.objects.filter(pk=intent.pk).delete()


def _storage_unavailable(exc: BaseException) -> ServiceUnavailable:
    logger.warning("storage failed during an upload: %s: %s", type(exc).__name__, str(exc)[:200])
    return ServiceUnavailable("Storage is not available; nothing was stored. Try again shortly.")


def _audit_duplicate(*, owner: User, existing: MediaItem, filename: str, via: str) -> None:
    audit_record(
        actor=owner,
        action="media.upload_duplicate",
        target=existing,
        payload={"filename": filename, "sha256": existing.sha256, "via": via},
    )


# --- direct upload -----------------------------------------------------------------------------------------
def media_item_create_from_upload(
    *,
    owner: User,
    uploaded_file: UploadedFile,
    filename: str | None = None,
    declared_content_type: str | None = None,
    review_requested: bool = False,
    priority: str = "normal",
) -> UploadResult:
    """Validate an uploaded file from its bytes, de-duplicate by SHA-256, write it to storage once and record it.

    The bytes are hashed, sniffed and validated in one pass (media.validation.StreamInspector): while the request
    body arrives when the API's handler received it (media/api/uploads.py), else here over the file's chunks.
    Only bytes that passed are stored, in one write. Any refusal raises a HlekkrError (the codes are in
    media/validation.py) after an audit event, with no row and no object left behind. The same owner's live
    item with the same bytes is returned with `duplicate=True`; then nothing is stored or published.
    """
    name = sanitize_filename(filename if filename is not None else uploaded_file.name)
    declared = declared_content_type if declared_content_type is not None else (uploaded_file.content_type or "")
    size = int(uploaded_file.size or 0)
    try:
        if size <= 0:
            raise ValidationFailed("The file is empty.", code="empty_file")
        limit = conf.max_direct_upload_bytes()
        if size > limit or not getattr(uploaded_file, "complete", True):
            raise PayloadTooLarge(
                f"Direct uploads are limited to {limit} bytes; use a multipart upload for larger files.",
                code="payload_too_large",
                details={"size": size, "max_bytes": limit},
            )
        inspected = _inspect_upload(uploaded_file, declared)
    except HlekkrError as error:
        _audit_rejection(owner=owner, error=error, filename=name, size=size, declared=declared)
        raise
    facts, sha256 = inspected.facts, inspected.sha256

    existing = _live_duplicate(owner, sha256)
    if existing is not None:
        _audit_duplicate(owner=owner, existing=existing, filename=name, via="direct")
        return UploadResult(existing, duplicate=True)

    item = MediaItem(
        id=getattr(uploaded_file, "media_id", None) or uuid.uuid4(),
        owner=owner,
        size=size,
        sha256=sha256,
        original_filename=name,
        review_requested=review_requested,
        priority=priority,
        status=MediaStatus.STORED,
    )
    _apply_facts(item, facts)
    item.storage_key = saved_name = storage.original_key(item)
    intent = _intend(media_id=item.id, key=item.storage_key)
    relay = _take_relay(uploaded_file)
    if relay is None:
        try:
            _write_kept(uploaded_file, item, size=size)
        except Exception as exc:
            # A write that failed half-way may have left part of the object behind (filesystem storage does).
            _delete_object(saved_name)
            _forget(intent)
            raise _storage_unavailable(exc) from exc
    try:
        with transaction.atomic():
            item.save(force_insert=True)  # a concurrent duplicate fails here, before the streamed write's end
            _forget(intent)  # the row now owns the object: both commit together
            if relay is not None:
                # S3 stores the object while the rows are written; they commit only once it answered.
                _send_rest(relay)
            audit_record(
                actor=owner,
                action="media.uploaded",
                target=item,
                payload={"kind": item.kind, "mime_type": item.mime_type, "size": size, "sha256": sha256},
            )
            publish(MEDIA_STORED, _stored_payload(item))
            if relay is not None:
                _finish_streamed_write(relay, uploaded_file, item, size=size)
    except IntegrityError:
        # The same bytes were stored by a concurrent request between our check and our insert.
        _end_write(relay, saved_name)
        _forget(intent)
        existing = _live_duplicate(owner, sha256)
        if existing is None:
            raise
        _audit_duplicate(owner=owner, existing=existing, filename=name, via="direct")
        return UploadResult(existing, duplicate=True)
    except _StorageFailed as failed:
        _delete_object(saved_name)
        _forget(intent)
        raise _storage_unavailable(failed.cause) from failed.cause
    except BaseException:
        _end_write(relay, saved_name)
        _forget(intent)
        raise
    return UploadResult(item)


class _StorageFailed(Exception):
    """Storage failed inside the upload's transaction (the streamed write and the write of the kept bytes both):
    raised through transaction.atomic so the rows roll back, then answered 503 like any storage failure."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _take_relay(uploaded_file: UploadedFile) -> storage.StreamingPut | None:
    """The PutObject that streamed while the body arrived, its last chunk held back (media/api/uploads.py)."""
    relay = getattr(uploaded_file, "relay", None)
    if relay is not None:
        uploaded_file.relay = None  # type: ignore[attr-defined]
    return relay


def _write_kept(uploaded_file: UploadedFile, item: MediaItem, *, size: int) -> None:
    # S3 serves the object with this type later; it must be the sniffed one, never the client's claim.
    storage.write_object(item.storage_key, uploaded_file, size=size, content_type=item.mime_type)


def _send_rest(relay: storage.StreamingPut) -> None:
    try:
        relay.send_rest()
    except Exception as exc:  # the kept bytes are written instead (_finish_streamed_write)
        logger.warning("streamed write failed at its end: %s: %s", type(exc).__name__, exc)
        relay.abort()


def _finish_streamed_write(
    relay: storage.StreamingPut, uploaded_file: UploadedFile, item: MediaItem, *, size: int
) -> None:
    """S3's answer to the streamed PutObject; if the stream failed (here, or at its end in _send_rest, which
    aborted it and said why), the kept bytes are written in one request. Raises _StorageFailed when that fails
    too."""
    if relay.open:
        try:
            relay.commit()
            return
        except Exception as exc:
            logger.warning("streamed write failed, writing the upload again: %s: %s", type(exc).__name__, exc)
            relay.abort()
    try:
        _write_kept(uploaded_file, item, size=size)
    except Exception as exc:
        raise _StorageFailed(exc) from exc


def _end_write(relay: storage.StreamingPut | None, key: str) -> None:
    """Undo the write of an upload that will not be recorded: a streamed PutObject still holding its last chunk
    is aborted (S3 never creates the object); one whose body went out is waited for first, so the delete comes
    after the object."""
    if relay is not None:
        if relay.open and relay.body_complete:
            with contextlib.suppress(Exception):  # nothing was stored, or the delete below removes it
                relay.commit()
        relay.abort()
    _delete_object(key)


def _inspect_upload(uploaded_file: UploadedFile, declared: str) -> Inspected:
    """The verdict on an upload's bytes: from the inspector that watched them arrive when there is one (and it
    judged them against the same declared type), else from one pass over the file's chunks now."""
    inspector = getattr(uploaded_file, "inspector", None)
    if isinstance(inspector, StreamInspector) and inspector.declared == declared:
        return inspector.finish()
    inspector = StreamInspector(declared_content_type=declared)
    uploaded_file.seek(0)
    try:
        for chunk in uploaded_file.chunks(HASH_CHUNK):
            inspector.feed(chunk)
    except BaseException:
        inspector.close()
        raise
    return inspector.finish()


# --- multipart ---------------------------------------------------------------------------------------------
def part_size_for(size: int) -> int:
    return max(conf.MIN_PART_SIZE, math.ceil(size / conf.MAX_PARTS))


def _part_urls(upload: MultipartUpload, numbers: list[int]) -> list[dict[str, Any]]:
    ttl = conf.part_url_ttl_seconds()
    expires_at = timezone.now() + timedelta(seconds=ttl)
    urls = []
    for number in numbers:
        if multipart.is_s3():
            url = multipart.s3_part_url(upload.media.storage_key, upload.s3_upload_id, number, ttl)
        else:
            token = multipart.part_token(upload.id, number, expires_at)
            url = reverse("media-upload-part", args=[upload.id, number]) + f"?token={token}"
        urls.append({"part_number": number, "url": url})
    upload.expires_at = expires_at
    return urls


def multipart_upload_start(
    *,
    owner: User,
    filename: str,
    size: int,
    content_type: str,
    review_requested: bool = False,
    priority: str = "normal",
) -> UploadTicket:
    """Start a resumable upload: a placeholder item (status `uploading`), the S3 multipart upload (or its
    filesystem twin) and one URL per part. Part size is max(8 MiB, ceil(size / 10000)); the size limit is the
    caller's role maximum (media/conf.py)."""
    name = sanitize_filename(filename)
    declared = str(content_type or "")
    try:
        if size <= 0:
            raise ValidationFailed("The file is empty.", code="empty_file")
        limit = conf.max_multipart_bytes_for(getattr(owner, "role", ""))
        if size > limit:
            raise PayloadTooLarge(
                f"Uploads are limited to {limit} bytes for your account.",
                code="payload_too_large",
                details={"size": size, "max_bytes": limit},
            )
        declared = check_declared_allowed(declared)
    except HlekkrError as error:
        _audit_rejection(owner=owner, error=error, filename=name, size=size, declared=declared)
        raise
    part_size = part_size_for(size)
    item = MediaItem(
        id=uuid.uuid4(),
        owner=owner,
        size=size,
        original_filename=name,
        status=MediaStatus.UPLOADING,
        review_requested=review_requested,
        priority=priority,
    )
    item.storage_key = storage.original_key(item)
    intent = _intend(media_id=item.id, key=item.storage_key)
    try:
        s3_upload_id = multipart.s3_start(item.storage_key) if multipart.is_s3() else ""
    except Exception as exc:
        _forget(intent)
        raise _storage_unavailable(exc) from exc
    if s3_upload_id:
        StorageIntent.objects.filter(pk=intent.pk).update(s3_upload_id=s3_upload_id)
    upload = MultipartUpload(
        owner=owner,
        media=item,
        s3_upload_id=s3_upload_id,
        declared_size=size,
        declared_content_type=declared,
        part_size=part_size,
        part_count=math.ceil(size / part_size),
        expires_at=timezone.now(),
    )
    parts = _part_urls(upload, list(range(1, upload.part_count + 1)))
    try:
        with transaction.atomic():
            item.save(force_insert=True)
            upload.save(force_insert=True)
            _forget(intent)
            audit_record(
                actor=owner,
                action="media.upload_started",
                target=upload,
                payload={"media_id": str(item.id), "size": size, "parts": upload.part_count, "filename": name},
            )
    except BaseException:
        if s3_upload_id:
            multipart.s3_abort(item.storage_key, s3_upload_id)
        _forget(intent)
        raise
    return UploadTicket(upload, parts)


def upload_get_owned(*, owner: User, upload_id: Any) -> MultipartUpload:
    upload = MultipartUpload.objects.select_related("media").filter(pk=upload_id, owner=owner).first()
    if upload is None:
        raise NotFound("No such upload.", code="not_found")
    return upload


def _stored_parts(upload: MultipartUpload) -> dict[int, multipart.StoredPart]:
    if multipart.is_s3():
        return multipart.s3_list_parts(upload.media.storage_key, upload.s3_upload_id)
    return multipart.fs_list_parts(upload.id)


def multipart_upload_status(*, owner: User, upload_id: Any) -> dict[str, Any]:
    """What storage holds so far, and fresh URLs for the parts still missing (resume)."""
    upload = upload_get_owned(owner=owner, upload_id=upload_id)
    received: dict[int, multipart.StoredPart] = {}
    urls: list[dict[str, Any]] = []
    missing: list[int] = []
    if upload.state == UploadState.ACTIVE:
        received = _stored_parts(upload)
        missing = [n for n in range(1, upload.part_count + 1) if n not in received]
        urls = _part_urls(upload, missing)
        MultipartUpload.objects.filter(pk=upload.pk).update(expires_at=upload.expires_at)
    return {
        "upload": upload,
        "parts_received": [
            {"part_number": p.part_number, "etag": p.etag, "size": p.size} for p in sorted(received.values(), key=_num)
        ],
        "missing_parts": missing,
        "parts": urls,
    }


def _num(part: multipart.StoredPart) -> int:
    return part.part_number


def _check_part_list(upload: MultipartUpload, given: list[dict[str, Any]]) -> list[multipart.StoredPart]:
    numbers = [int(p["part_number"]) for p in given]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise ValidationFailed(
            "Parts must be listed once each, in ascending part_number order.", code="parts_out_of_order"
        )
    stored = _stored_parts(upload)
    expected = list(range(1, upload.part_count + 1))
    missing = [n for n in expected if n not in numbers or n not in stored]
    unknown = [n for n in numbers if n not in expected]
    if missing or unknown:
        raise ValidationFailed(
            "The part list does not cover every part of the upload.",
            code="missing_parts",
            details={"missing": missing[:100], "unexpected": unknown[:100]},
        )
    wrong = [p["part_number"] for p in given if multipart.clean_etag(p["etag"]) != stored[int(p["part_number"])].etag]
    if wrong:
        raise ValidationFailed(
            "Some ETags do not match the parts storage received.", code="etag_mismatch", details={"parts": wrong[:100]}
        )
    parts = [stored[n] for n in expected]
    total = sum(p.size for p in parts)
    if total != upload.declared_size or any(p.size != upload.part_size for p in parts[:-1]):
        raise ValidationFailed(
            "The uploaded bytes do not add up to the declared size.",
            code="size_mismatch",
            details={"declared": upload.declared_size, "received": total},
        )
    return parts


def _finish_in_storage(upload: MultipartUpload, parts: list[multipart.StoredPart]) -> tuple[int, Inspected]:
    """Assemble the object and judge its bytes without reading it back; returns (size, verdict).

    Filesystem (the embedded run): the parts are concatenated into the object once, and every chunk goes through
    the StreamInspector on the way (hash and validation in the same pass). S3: CompleteMultipartUpload, then only
    what the checks need: audio and video are checked from the object's two ends (two ranged GETs, whatever its
    size) and their SHA-256 is left to the analysis worker, which reads the whole object anyway
    (media.storage.local_copy -> media_item_record_sha256); images, whose checks need every byte (the JPEG walk
    and decode, PNG CRCs), are read once through the inspector, which hashes them in the same pass."""
    key = upload.media.storage_key
    declared = upload.declared_content_type
    if not multipart.is_s3():
        target = Path(default_storage.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w+b") as out:
            inspector = StreamInspector(declared_content_type=declared, spool=out)
            try:
                size = multipart.fs_assemble(upload.id, [p.part_number for p in parts], out, on_chunk=inspector.feed)
                out.flush()
            except BaseException:
                inspector.close()
                raise
            multipart.fs_discard(upload.id)
            _check_stored_size(upload, size)
            return size, inspector.finish()
    multipart.s3_complete(key, upload.s3_upload_id, parts)
    size = sum(p.size for p in parts)  # what S3 assembled: the parts it listed, checked against the declared size
    with multipart.open_stored(key, size) as handle:
        _mime, kind = sniff(handle.read(SNIFF_BYTES))
        if kind != "image":
            facts = validate_media(handle, size=size, declared_content_type=declared)
            return size, Inspected(facts, "", size)
    inspector = StreamInspector(declared_content_type=declared)
    try:
        for chunk in multipart.iter_stored(key):
            inspector.feed(chunk)
    except BaseException:
        inspector.close()
        raise
    inspected = inspector.finish()
    _check_stored_size(upload, inspected.size)
    return size, inspected


def _check_stored_size(upload: MultipartUpload, size: int) -> None:
    if size != upload.declared_size:
        raise ValidationFailed(
            "The stored object's size differs from the declared size.",
            code="size_mismatch",
            details={"declared": upload.declared_size, "stored": size},
        )


def _discard_upload_bytes(upload: MultipartUpload) -> None:
    key = upload.media.storage_key
    if multipart.is_s3():
        if upload.s3_upload_id:
            multipart.s3_abort(key, upload.s3_upload_id)
    else:
        multipart.fs_discard(upload.id)
    _delete_object(key)


def _reject_upload(upload: MultipartUpload, error: HlekkrError, *, actor: User) -> None:
    _discard_upload_bytes(upload)
    with transaction.atomic():
        MultipartUpload.objects.filter(pk=upload.pk).update(
            state=UploadState.FAILED, failure_reason=error.code, completed_at=timezone.now()
        )
        MediaItem.objects.filter(pk=upload.media_id).update(status=MediaStatus.REJECTED, updated_at=timezone.now())
        _audit_rejection(
            owner=actor,
            error=error,
            filename=upload.media.original_filename,
            size=upload.declared_size,
            declared=upload.declared_content_type,
            media_id=upload.media_id,
            upload_id=str(upload.id),
        )


def multipart_upload_complete(*, owner: User, upload_id: Any, parts: list[dict[str, Any]]) -> UploadResult:
    """Finish an upload: check the part list against what storage holds, complete it, then check the stored
    object's size and bytes exactly like a direct upload before the item becomes `stored`.

    Part-list mistakes (missing part, wrong ETag, out of order) are refused and the upload stays active so the
    client can fix the list. Anything wrong with the bytes rejects the upload for good: the object and parts
    are deleted and the item is `rejected`. Completing an upload that is not active is 409 upload_not_active.
    """
    upload = upload_get_owned(owner=owner, upload_id=upload_id)
    claimed = MultipartUpload.objects.filter(pk=upload.pk, state=UploadState.ACTIVE).update(
        state=UploadState.COMPLETING
    )
    if not claimed:
        raise Conflict("This upload is not active (already completed, aborted or failed).", code="upload_not_active")
    try:
        stored_parts = _check_part_list(upload, parts)
    except HlekkrError as error:
        if error.code in RETRYABLE_COMPLETE_CODES:
            with transaction.atomic():  # the state change and its audit event together
                MultipartUpload.objects.filter(pk=upload.pk).update(state=UploadState.ACTIVE)
                audit_record(
                    actor=owner, action="media.upload_complete_refused", target=upload, payload={"code": error.code}
                )
        else:
            _reject_upload(upload, error, actor=owner)
        raise
    except BaseException:
        MultipartUpload.objects.filter(pk=upload.pk).update(state=UploadState.ACTIVE)
        raise
    item = upload.media
    try:
        size, inspected = _finish_in_storage(upload, stored_parts)
        facts, sha256 = inspected.facts, inspected.sha256
    except HlekkrError as error:
        _reject_upload(upload, error, actor=owner)
        raise
    except Exception as exc:
        # Storage failed underneath us: nothing may stay half-stored; the client starts over.
        _reject_upload(upload, HlekkrError("storage failure", code="storage_error"), actor=owner)
        raise _storage_unavailable(exc) from exc
    except BaseException:
        _reject_upload(upload, HlekkrError("storage failure", code="storage_error"), actor=owner)
        raise
    # No SHA-256 yet (audio or video on S3): stored now, de-duplicated when the worker has hashed it.
    existing = _live_duplicate(owner, sha256) if sha256 else None
    if existing is None:
        try:
            with transaction.atomic():
                item = MediaItem.objects.select_for_update().get(pk=item.pk)
                # DELETE media/{id}/ may land while storage assembles and checks the bytes: the item stays
                # deleted (never resurrected as stored and analysed) and the assembled object goes below.
                deleted_meanwhile = item.status != MediaStatus.UPLOADING
                if deleted_meanwhile:
                    MultipartUpload.objects.filter(pk=upload.pk).update(
                        state=UploadState.ABORTED, failure_reason="media_deleted", completed_at=timezone.now()
                    )
                    audit_record(
                        actor=owner, action="media.upload_aborted", target=upload, payload={"reason": "media_deleted"}
                    )
                else:
                    _apply_facts(item, facts)
                    item.size, item.sha256, item.status = size, sha256, MediaStatus.STORED
                    item.save()
                    MultipartUpload.objects.filter(pk=upload.pk).update(
                        state=UploadState.COMPLETED, completed_at=timezone.now()
                    )
                    audit_record(
                        actor=owner,
                        action="media.upload_completed",
                        target=item,
                        payload={"upload_id": str(upload.id), "kind": item.kind, "size": size, "sha256": sha256},
                    )
                    publish(MEDIA_STORED, _stored_payload(item))
            if deleted_meanwhile:
                _delete_object(item.storage_key)
                raise Conflict("This upload is not active (its media item was deleted).", code="upload_not_active")
            return UploadResult(item)
        except IntegrityError:
            existing = _live_duplicate(owner, sha256)
            if existing is None:
                raise
    # The same owner already has these bytes: resolve to that item and drop this copy.
    _delete_object(item.storage_key)
    with transaction.atomic():
        MediaItem.objects.filter(pk=item.pk).update(status=MediaStatus.DELETED, updated_at=timezone.now())
        MultipartUpload.objects.filter(pk=upload.pk).update(
            state=UploadState.COMPLETED, completed_at=timezone.now(), duplicate_of=existing
        )
        _audit_duplicate(owner=owner, existing=existing, filename=item.original_filename, via="multipart")
    return UploadResult(existing, duplicate=True)


def media_item_record_sha256(*, media_id: Any, sha256: str) -> bool:
    """Record the SHA-256 of an item stored without one (audio or video completed on S3), computed by the worker
    that copied its bytes. If the owner already has a live item with these bytes, this one resolves to it as a
    multipart duplicate does at completion: it becomes `deleted`, its upload points at the earlier item
    (`duplicate_of`), its objects go, and `media.upload_duplicate` is audited. Returns False then, True when
    the item keeps its bytes (or already had a hash). Idempotent."""
    with transaction.atomic():
        item = MediaItem.objects.select_for_update().filter(pk=media_id).first()
        if item is None or item.sha256 or item.status != MediaStatus.STORED:
            return item is not None and item.status == MediaStatus.STORED
        existing = (
            MediaItem.objects.filter(owner_id=item.owner_id, sha256=sha256, status=MediaStatus.STORED)
            .exclude(pk=item.pk)
            .first()
        )
        if existing is None:
            try:
                with transaction.atomic():
                    MediaItem.objects.filter(pk=item.pk).update(sha256=sha256, updated_at=timezone.now())
                    audit_record(actor=None, action="media.hashed", target=item, payload={"sha256": sha256})
                return True
            except IntegrityError:  # a concurrent upload of the same bytes committed first
                existing = _live_duplicate(item.owner, sha256)
                if existing is None:
                    raise
        MediaItem.objects.filter(pk=item.pk).update(
            status=MediaStatus.DELETED, outcome_version=F("outcome_version") + 1, updated_at=timezone.now()
        )
        MultipartUpload.objects.filter(media_id=item.pk).update(duplicate_of=existing)
        audit_record(
            actor=None,
            action="media.upload_duplicate",
            target=existing,
            payload={
                "filename": item.original_filename,
                "sha256": sha256,
                "via": "multipart",
                "media_id": str(item.pk),
            },
        )
        publish(MEDIA_DELETED, {"media_id": str(item.pk), "owner_id": item.owner_id})
    storage.delete_prefix(item)
    return False


def multipart_upload_abort(*, upload: MultipartUpload, actor: User | None, reason: str = "client") -> MultipartUpload:
    """Abort an active (or stuck completing) upload: storage drops the parts, the placeholder item is deleted."""
    with transaction.atomic():
        # A stuck `completing` claim (its process died) is only released by the stale sweep.
        states = [UploadState.ACTIVE, UploadState.COMPLETING] if reason == "stale" else [UploadState.ACTIVE]
        changed = MultipartUpload.objects.filter(pk=upload.pk, state__in=states).update(
            state=UploadState.ABORTED, failure_reason=reason, completed_at=timezone.now()
        )
        if not changed:
            raise Conflict("This upload is not active.", code="upload_not_active")
        MediaItem.objects.filter(pk=upload.media_id, status=MediaStatus.UPLOADING).update(
            status=MediaStatus.DELETED, updated_at=timezone.now()
        )
        audit_record(actor=actor, action="media.upload_aborted", target=upload, payload={"reason": reason})
        # Committed with the abort: if we die before the bytes are gone, the orphan sweep finishes the job.
        intent = _intend(
            media_id=upload.media_id,
            key=upload.media.storage_key,
            s3_upload_id=upload.s3_upload_id,
            multipart_upload_id=upload.id,
        )
    _discard_upload_bytes(upload)
    _forget(intent)
    upload.refresh_from_db()
    return upload


def multipart_uploads_abort_stale(*, older_than_hours: int | None = None) -> int:
    """Abort uploads still incomplete after `older_than_hours` (default from settings, 24 h); returns how many."""
    hours = older_than_hours if older_than_hours is not None else conf.stale_upload_hours()
    cutoff = timezone.now() - timedelta(hours=hours)
    stale = MultipartUpload.objects.select_related("media").filter(
        state__in=[UploadState.ACTIVE, UploadState.COMPLETING], created_at__lt=cutoff
    )
    aborted = 0
    for upload in stale.iterator():
        try:
            multipart_upload_abort(upload=upload, actor=None, reason="stale")
            aborted += 1
        except Conflict:
            continue  # finished or aborted by someone else meanwhile
    return aborted


# --- orphans -----------------------------------------------------------------------------------------------
def media_storage_sweep_orphans(*, grace_seconds: int | None = None, batch_size: int = 500) -> int:
    """Remove bytes that no live item owns: every storage intent older than the grace period (default
    HLEKKR_ORPHAN_GRACE_SECONDS, 1 h) whose item never committed, or is deleted or rejected, has its object
    deleted, its S3 multipart upload aborted and its filesystem parts discarded. Idempotent; returns how many
    intents were resolved. An intent whose item is live and owns the key is simply dropped."""
    grace = grace_seconds if grace_seconds is not None else conf.orphan_grace_seconds()
    cutoff = timezone.now() - timedelta(seconds=grace)
    swept = 0
    for intent in StorageIntent.objects.filter(created_at__lt=cutoff).order_by("created_at")[:batch_size]:
        item = MediaItem.objects.filter(pk=intent.media_id).first()
        live = item is not None and item.status in (MediaStatus.STORED, MediaStatus.UPLOADING)
        if not (live and item is not None and item.storage_key == intent.key):
            if intent.s3_upload_id and multipart.is_s3():
                multipart.s3_abort(intent.key, intent.s3_upload_id)
            if intent.multipart_upload_id and not multipart.is_s3():
                multipart.fs_discard(intent.multipart_upload_id)
            if default_storage.exists(intent.key):
                default_storage.delete(intent.key)
            with transaction.atomic():
                audit_record(
                    actor=None,
                    action="media.orphan_swept",
                    object_type="media.mediaitem",
                    object_id=str(intent.media_id),
                    payload={"key": intent.key, "item": item.status if item is not None else "never committed"},
                )
                _forget(intent)
        else:
            _forget(intent)
        swept += 1
    if swept:
        logger.info("orphan sweep: resolved %d storage intents", swept)
    return swept


# --- deletion and outcomes ---------------------------------------------------------------------------------
def media_item_delete(*, owner: User, media_id: Any) -> MediaItem:
    """Delete an owner's item: status `deleted`, its original and every artifact removed from storage,
    `media.deleted` published. Another owner's or an already deleted item is 404."""
    with transaction.atomic():
        item = MediaItem.objects.select_for_update().filter(visible_to(owner), pk=media_id).first()
        if item is None:
            raise NotFound("No such media item.", code="not_found")
        previous = item.status
        item.status = MediaStatus.DELETED
        item.save(update_fields=["status", "updated_at"])
        active_upload = MultipartUpload.objects.filter(media=item, state=UploadState.ACTIVE).first()
        if active_upload is not None:
            MultipartUpload.objects.filter(pk=active_upload.pk).update(
                state=UploadState.ABORTED, failure_reason="media_deleted", completed_at=timezone.now()
            )
        audit_record(actor=owner, action="media.deleted", target=item, payload={"previous_status": previous})
        publish(MEDIA_DELETED, {"media_id": str(item.id), "owner_id": item.owner_id})
    if active_upload is not None:
        active_upload.media = item
        _discard_upload_bytes(active_upload)
    storage.delete_prefix(item)
    return item


def media_item_record_outcome(
    *,
    media_id: Any,
    analysis_status: str,
    trust_score: int | None = None,
    verdict: str = "",
    keep_scores: bool = False,
) -> MediaItem:
    """Record the latest analysis outcome on the item (called by the analysis app); bumps outcome_version,
    which changes the detail ETag and cache key. With `keep_scores` only the status changes and the item keeps
    its trust score and verdict (a re-analysis in progress or failed must not blank them in list filters)."""
    fields: dict[str, Any] = {"analysis_status": analysis_status}
    if not keep_scores:
        fields.update(trust_score=trust_score, verdict=verdict or "")
    with transaction.atomic():
        updated = MediaItem.objects.filter(pk=media_id).update(
            **fields, outcome_version=F("outcome_version") + 1, updated_at=timezone.now()
        )
        if not updated:
            raise NotFound("No such media item.", code="not_found")
        item = MediaItem.objects.get(pk=media_id)
        audit_record(
            actor=None,
            action="media.outcome_recorded",
            target=item,
            payload={"analysis_status": analysis_status, "trust_score": item.trust_score, "verdict": item.verdict},
        )
    return item


def media_item_record_final_verdict(*, media_id: Any, verdict: str) -> MediaItem:
    """Record the human verdict once review decides (called by the review app); bumps outcome_version."""
    with transaction.atomic():
        updated = MediaItem.objects.filter(pk=media_id).update(
            final_verdict=verdict or "", outcome_version=F("outcome_version") + 1, updated_at=timezone.now()
        )
        if not updated:
            raise NotFound("No such media item.", code="not_found")
        item = MediaItem.objects.get(pk=media_id)
        audit_record(actor=None, action="media.final_verdict_recorded", target=item, payload={"verdict": verdict})
    return item


# --- fetching from a URL -----------------------------------------------------------------------------------
FETCH_MAX_ATTEMPTS = 3


def _filename_from_url(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return sanitize_filename(path.rsplit("/", 1)[-1] if "/" in path else "", fallback="fetched")


def url_fetch_start(
    *,
    owner: User,
    url: str,
    queue: str = "interactive",
    review_requested: bool = False,
    priority: str = "normal",
) -> UrlFetch:
    """Accept a URL to analyse: the cheap checks now (scheme, host, where it resolves: a refusal raises
    FetchRefused, 400, with nothing stored), then a placeholder item in status `fetching` and a pending
    UrlFetch, sent to the worker on `queue` after commit. The worker does the fetch (url_fetch_run)."""
    url = url.strip()
    try:
        fetch.check_source_url(url)
    except HlekkrError as error:
        _audit_rejection(owner=owner, error=error, filename="", size=0, declared="", source_url=url[:2048])
        raise
    item = MediaItem(
        id=uuid.uuid4(),
        owner=owner,
        original_filename=_filename_from_url(url),
        status=MediaStatus.FETCHING,
        review_requested=review_requested,
        priority=priority,
    )
    item.storage_key = storage.original_key(item)
    with transaction.atomic():
        item.save(force_insert=True)
        job = UrlFetch.objects.create(owner=owner, media=item, source_url=url, queue=queue)
        audit_record(
            actor=owner, action="media.fetch_requested", target=item, payload={"url": url, "fetch_id": str(job.id)}
        )
        url_fetch_enqueue(fetch_id=job.id)
    return job


def url_fetch_enqueue(*, fetch_id: Any) -> None:
    """Send the fetch task after the surrounding transaction commits; the reconciler re-sends lost ones."""
    job = UrlFetch.objects.filter(pk=fetch_id).values("queue").first()
    if job is None:
        return
    UrlFetch.objects.filter(pk=fetch_id).update(enqueued_at=timezone.now())

    def send() -> None:
        from media.tasks import fetch_url_task

        try:
            fetch_url_task.apply_async(args=[str(fetch_id)], queue=job["queue"])
        except Exception:
            logger.exception("could not send fetch %s; the reconciler will retry", fetch_id)

    transaction.on_commit(send, robust=True)


def _claim_fetch(fetch_id: Any) -> UrlFetch | None:
    """pending -> fetching (or re-claim one whose worker died mid-fetch), attempts + 1; None: nothing to do."""
    now = timezone.now()
    stale = now - timedelta(seconds=2 * conf.fetch_total_timeout_seconds() + 60)
    claimed = (
        UrlFetch.objects.filter(pk=fetch_id)
        .filter(Q(state=FetchState.PENDING) | Q(state=FetchState.FETCHING, started_at__lt=stale))
        .update(state=FetchState.FETCHING, started_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return UrlFetch.objects.select_related("media", "owner").get(pk=fetch_id)


def _fetch_finished(job: UrlFetch, **fields: Any) -> None:
    """Record the end of a fetch (inside the caller's transaction) and publish `media.fetch_finished`."""
    fields.setdefault("finished_at", timezone.now())
    UrlFetch.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    resolved = fields.get("resolved_media")
    publish(
        MEDIA_FETCH_FINISHED,
        {
            "fetch_id": str(job.id),
            "media_id": str(job.media_id),
            "resolved_media_id": str(resolved.pk) if resolved is not None else "",
            "owner_id": job.owner_id,
            "state": job.state,
            "error_code": job.error_code,
        },
    )


def _fetch_evidence(fetched: fetch.Fetched) -> dict[str, Any]:
    return {
        "final_url": fetched.final_url[:2048],
        "page_url": fetched.page_url[:2048],
        "hops": [hop[:2048] for hop in fetched.hops],
        "content_type": fetched.content_type[:100],
        "size": fetched.size,
    }


def url_fetch_fail(*, job: UrlFetch, error: HlekkrError, evidence: dict[str, Any] | None = None) -> UrlFetch:
    """The fetch is refused for good: the placeholder becomes `rejected` (nothing stored), with the code."""
    with transaction.atomic():
        MediaItem.objects.filter(pk=job.media_id, status=MediaStatus.FETCHING).update(
            status=MediaStatus.REJECTED, outcome_version=F("outcome_version") + 1, updated_at=timezone.now()
        )
        _audit_rejection(
            owner=job.owner,
            error=error,
            filename=job.media.original_filename,
            size=int((evidence or {}).get("size") or 0),
            declared=str((evidence or {}).get("content_type") or ""),
            media_id=job.media_id,
            source_url=job.source_url,
            final_url=(evidence or {}).get("final_url", ""),
        )
        _fetch_finished(
            job,
            state=FetchState.FAILED,
            error_code=error.code[:64],
            error_message=error.message[:500],
            **(evidence or {}),
        )
    return job


def url_fetch_run(*, fetch_id: Any) -> UrlFetch | None:
    """The worker's part: fetch under the rules of media/fetch.py into a local temporary file, validate the
    bytes exactly like an upload, then store them as the placeholder item (publishing `media.stored` on the
    fetch's queue) or resolve to the owner's earlier item with the same bytes.

    Idempotent: a fetch that is not pending (or stale while fetching) is left alone. Every refusal ends the
    fetch as `failed` with its code; the temporary file goes with the `with`, so nothing half-fetched stays
    anywhere, and storage is written only once the bytes have passed validation."""
    job = _claim_fetch(fetch_id)
    if job is None:
        return None
    if job.attempts > FETCH_MAX_ATTEMPTS:
        return url_fetch_fail(
            job=job, error=HlekkrError("The fetch kept failing inside Hlekkr.", code="fetch_internal_error")
        )
    with tempfile.NamedTemporaryFile(prefix="hlekkr-fetch-", suffix=".part") as spool:
        evidence: dict[str, Any] = {}
        try:
            fetched = fetch.fetch_media(job.source_url, spool)
            evidence = _fetch_evidence(fetched)
            spool.flush()
            spool.seek(0)
            facts = validate_media(spool, size=fetched.size, declared_content_type=None)
            spool.seek(0)
            sha256 = _sha256_of(spool)
        except HlekkrError as error:
            return url_fetch_fail(job=job, error=error, evidence=evidence)
        return _store_fetched(job, spool, facts=facts, sha256=sha256, evidence=evidence)


def _store_fetched(job: UrlFetch, spool: Any, *, facts: MediaFacts, sha256: str, evidence: dict[str, Any]) -> UrlFetch:
    owner = job.owner
    existing = _live_duplicate(owner, sha256)
    saved_name = ""
    if existing is None:
        spool.seek(0)
        saved_name = default_storage.save(job.media.storage_key, spool)
    try:
        with transaction.atomic():
            item = MediaItem.objects.select_for_update().get(pk=job.media_id)
            if item.status != MediaStatus.FETCHING:  # deleted by its owner while we fetched
                deleted_meanwhile = True
                _fetch_finished(job, state=FetchState.FAILED, error_code="media_deleted", **evidence)
            elif existing is not None:
                deleted_meanwhile = False
                _resolve_fetch_to(job, item, existing, evidence)
            else:
                deleted_meanwhile = False
                if saved_name != item.storage_key:
                    raise RuntimeError(f"storage saved {saved_name!r} instead of {item.storage_key!r}")
                _apply_facts(item, facts)
                item.size = int(evidence["size"])
                item.sha256 = sha256
                item.status = MediaStatus.STORED
                item.save()
                audit_record(
                    actor=owner,
                    action="media.fetched",
                    target=item,
                    payload={"kind": item.kind, "size": item.size, "sha256": sha256, "url": job.source_url, **evidence},
                )
                _fetch_finished(job, state=FetchState.STORED, resolved_media=item, **evidence)
                publish(MEDIA_STORED, _stored_payload(item, queue=job.queue))
        if deleted_meanwhile and saved_name:
            _delete_object(saved_name)
    except IntegrityError:
        # The same bytes were stored by a concurrent upload between our check and our update.
        _delete_object(saved_name)
        existing = _live_duplicate(owner, sha256)
        if existing is None:
            raise
        with transaction.atomic():
            item = MediaItem.objects.select_for_update().get(pk=job.media_id)
            _resolve_fetch_to(job, item, existing, evidence)
    except BaseException:
        if saved_name:
            _delete_object(saved_name)
        raise
    return job


def _resolve_fetch_to(job: UrlFetch, placeholder: MediaItem, existing: MediaItem, evidence: dict[str, Any]) -> None:
    """The owner already has these bytes: the placeholder goes (as a duplicate multipart upload's does) and
    the fetch points at the existing item, whose detail now lists this URL among its sources."""
    MediaItem.objects.filter(pk=placeholder.pk).update(status=MediaStatus.DELETED, updated_at=timezone.now())
    MediaItem.objects.filter(pk=existing.pk).update(outcome_version=F("outcome_version") + 1)
    _audit_duplicate(owner=job.owner, existing=existing, filename=placeholder.original_filename, via="url")
    _fetch_finished(job, state=FetchState.DUPLICATE, resolved_media=existing, **evidence)


def url_fetches_reconcile(*, batch_size: int = 200) -> dict[str, int]:
    """Beat: re-send fetches whose message was lost (pending for 5 min) or whose worker died mid-fetch."""
    now = timezone.now()
    resend_after = timedelta(minutes=5)
    stale = now - timedelta(seconds=2 * conf.fetch_total_timeout_seconds() + 60)
    due = UrlFetch.objects.filter(
        Q(state=FetchState.PENDING, enqueued_at__lt=now - resend_after)
        | Q(state=FetchState.PENDING, enqueued_at__isnull=True)
        | Q(state=FetchState.FETCHING, started_at__lt=stale)
    ).values_list("pk", flat=True)[:batch_size]
    sent = 0
    for fetch_id in due:
        url_fetch_enqueue(fetch_id=fetch_id)
        sent += 1
    return {"resent": sent}
