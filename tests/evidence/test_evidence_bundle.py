"""GET /api/v1/media/{id}/evidence/: the whole story of one item, for its owner only."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from analysis import services
from analysis.detectors import registry
from analysis.detectors.known_content import pdq_hash
from analysis.models import BankedHash, HashBank
from hlekkr.accounts.services import api_key_create


def _url(item: Any) -> str:
    return f"/api/v1/media/{item.id}/evidence/"


def test_the_owner_gets_every_detector_the_score_and_its_breakdown(
    api_as: Any, client_a: Any, analysed: Any, django_assert_max_num_queries: Any
) -> None:
    item, analysis = analysed(client_a)
    client = api_as(client_a)
    with django_assert_max_num_queries(8):
        response = client.get(_url(item))
    assert response.status_code == 200
    body = response.json()
    assert body["trust_score"] == analysis.trust_score == body["trust"]["trust_score"]
    assert body["trust"]["verdict"] == analysis.verdict
    assert body["trust"]["policy_version"] == analysis.scoring_policy.version
    assert body["trust"]["breakdown"] == analysis.breakdown
    assert body["analysis"]["id"] == str(analysis.pk)
    assert {d["detector"] for d in body["detectors"]} == {cls.name for cls in registry.detector_classes()}
    for detector in body["detectors"]:
        assert {"status", "score", "reasons", "evidence", "artifacts"} <= set(detector)
    ela = next(d for d in body["detectors"] if d["detector"] == "ela")
    assert ela["artifacts"] and ela["artifacts"][0]["url"].startswith("http://testserver/api/v1/files/")
    assert body["media"]["sha256"] == item.sha256
    assert body["media"]["download_url"].startswith("http://testserver/api/v1/files/")
    assert (body["provenance"]["state"], body["provenance"]["status"]) == ("absent", "abstained")
    assert body["hash_matches"]["pdq_hash"] and body["hash_matches"]["matches"] == []
    assert body["review"] is None or "final_verdict" in body["review"]


def test_artifact_links_in_the_bundle_download(api_as: Any, client_a: Any, analysed: Any) -> None:
    item, _ = analysed(client_a)
    client = api_as(client_a)
    body = client.get(_url(item)).json()
    ela = next(d for d in body["detectors"] if d["detector"] == "ela")
    download = client.get(ela["artifacts"][0]["url"].removeprefix("http://testserver"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"\x89PNG")


def test_hash_bank_matches_are_listed(api_as: Any, client_a: Any, analysed: Any, photo: bytes) -> None:
    from PIL import Image

    data = photo
    hash_hex, quality = pdq_hash(Image.open(io.BytesIO(data)))
    bank = HashBank.objects.create(name="debunked", kind="known_fake")
    BankedHash.objects.create(bank=bank, pdq_hash=hash_hex, quality=quality, label="circulated fake")
    item, _ = analysed(client_a, data)
    matches = api_as(client_a).get(_url(item)).json()["hash_matches"]
    assert matches["match_count"] >= 1
    assert matches["matches"][0]["bank"] == "debunked"
    assert "known_fake" in matches["decisive"]


def test_the_review_outcome_is_included_once_decided(api_as: Any, client_a: Any, moderator: Any, analysed: Any) -> None:
    from review.models import ReviewDecision, ReviewItem

    item, analysis = analysed(client_a)
    review_item = ReviewItem.objects.filter(analysis=analysis).first()
    if review_item is None:  # the escalation policy let it pass: put it in review as a client request would
        review_item = ReviewItem.objects.create(analysis=analysis, media=item, due_at=timezone.now())
    ReviewItem.objects.filter(pk=review_item.pk).update(
        status="decided", final_verdict="manipulated", final_confidence=0.9, decided_at=timezone.now()
    )
    ReviewDecision.objects.create(
        item=review_item, moderator=moderator, verdict="manipulated", confidence=0.9, notes="x"
    )
    review = api_as(client_a).get(_url(item)).json()["review"]
    assert review["final_verdict"] == "manipulated" and review["status"] == "decided"
    assert review["decisions"] == [{"verdict": "manipulated", "confidence": 0.9, "at": review["decisions"][0]["at"]}]
    assert "notes" not in json.dumps(review) and "moderator" not in json.dumps(review)


def test_another_client_gets_404(api_as: Any, client_a: Any, outsider: Any, analysed: Any) -> None:
    item, _ = analysed(client_a)
    for query in ("", "?format=zip"):
        response = api_as(outsider).get(_url(item) + query)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_it_answers_409_while_no_analysis_has_completed(api_as: Any, client_a: Any, stored_item: Any) -> None:
    item = stored_item(client_a)
    services.analysis_create(media=item)
    response = api_as(client_a).get(_url(item))
    assert response.status_code == 409
    assert response.json()["code"] == "analysis_pending"


def test_an_unknown_format_is_a_400(api_as: Any, client_a: Any, analysed: Any) -> None:
    item, _ = analysed(client_a)
    response = api_as(client_a).get(_url(item) + "?format=pdf")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_the_zip_holds_the_json_the_artifacts_and_the_original(api_as: Any, client_a: Any, analysed: Any) -> None:
    item, analysis = analysed(client_a)
    response = api_as(client_a).get(_url(item) + "?format=zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="hlekkr-evidence-{item.id}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    names = archive.namelist()
    document = json.loads(archive.read("evidence.json"))
    assert document["trust_score"] == analysis.trust_score
    assert document["media"]["path"] == "original/portrait_shot.jpg"
    with default_storage.open(item.storage_key, "rb") as original:
        assert archive.read("original/portrait_shot.jpg") == original.read()
    artifact_paths = [a["path"] for d in document["detectors"] for a in d["artifacts"]]
    assert artifact_paths and all(path in names for path in artifact_paths)
    assert archive.read(artifact_paths[0]).startswith(b"\x89PNG")


@pytest.mark.parametrize(("scopes", "status"), [(["media:read"], 200), (["media:write"], 403)])
def test_api_keys_need_media_read(client_a: Any, analysed: Any, scopes: list[str], status: int) -> None:
    from rest_framework.test import APIClient

    item, _ = analysed(client_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(user=client_a, name='k', scopes=scopes).plaintext}")
    assert client.get(_url(item)).status_code == status
