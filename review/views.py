"""The moderator dashboard: server-rendered pages with htmx fragments. Moderators, leads and admins only."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from hlekkr.accounts.models import User
from hlekkr.exceptions import HlekkrError
from review import selectors, services
from review.forms import AssignForm, DecisionForm, EscalateForm, GoldForm, QueueFilterForm
from review.models import ItemStatus, ReviewItem

View = Callable[..., HttpResponse]
QUEUE_PAGE_SIZE = 50


def moderator_required(view: View) -> View:
    """Anonymous: to the login page. Logged in without a moderator role (e.g. a client with an admin
    session cookie from elsewhere): 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not getattr(user, "is_moderator", False):
            raise DjangoPermissionDenied("The dashboard is for moderators.")
        return view(request, *args, **kwargs)

    return wrapped


def lead_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(request.user, "is_lead", False):
            raise DjangoPermissionDenied("This page is for lead moderators.")
        return view(request, *args, **kwargs)

    return moderator_required(wrapped)


def _me(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _filtered_queue(request: HttpRequest) -> tuple[QueueFilterForm, list[ReviewItem]]:
    form = QueueFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    qs = selectors.review_queue(
        status=data.get("status") or None,
        priority=data.get("priority") or None,
        expertise=data.get("expertise") or None,
        overdue=True if data.get("overdue") else None,
    )
    return form, list(qs[:QUEUE_PAGE_SIZE])


@require_GET
@moderator_required
def queue(request: HttpRequest) -> HttpResponse:
    form, items = _filtered_queue(request)
    profile = services.moderator_profile_ensure(user=_me(request))
    return render(
        request,
        "dashboard/queue.html",
        {"form": form, "items": items, "depth": selectors.queue_depth(), "profile": profile, "nav_active": "queue"},
    )


@require_GET
@moderator_required
def queue_rows(request: HttpRequest) -> HttpResponse:
    _, items = _filtered_queue(request)
    return render(request, "dashboard/_queue_rows.html", {"items": items})


@require_GET
@moderator_required
def queue_depth_fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/_depth.html", {"depth": selectors.queue_depth()})


@require_POST
@moderator_required
def take_next(request: HttpRequest) -> HttpResponse:
    try:
        item = services.review_item_claim_next(user=_me(request))
    except HlekkrError as exc:
        messages.info(request, exc.message)
        return redirect("dashboard:queue")
    return redirect("dashboard:item", item_id=item.pk)


@require_GET
@moderator_required
def my_work(request: HttpRequest) -> HttpResponse:
    profile = services.moderator_profile_ensure(user=_me(request))
    assignments = list(selectors.my_assignments(user=_me(request)))
    return render(
        request,
        "dashboard/mine.html",
        {"assignments": assignments, "profile": profile, "nav_active": "mine"},
    )


# --- the item page -------------------------------------------------------------------------------------------
def _plain_facts(evidence: Any) -> list[tuple[str, str]]:
    """Top-level scalar evidence as (label, value) pairs a moderator can read; nested data stays in the API."""
    facts: list[tuple[str, str]] = []
    if isinstance(evidence, dict):
        for key, value in evidence.items():
            if isinstance(value, bool):
                facts.append((key.replace("_", " "), "yes" if value else "no"))
            elif isinstance(value, int | float | str) and str(value) != "":
                text = f"{value:.3g}" if isinstance(value, float) else str(value)
                facts.append((key.replace("_", " "), text[:200]))
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                facts.append((key.replace("_", " "), ", ".join(value)[:200]))
    return facts[:12]


# Localising detectors' maps that can be laid over the image (same size and aspect as it, see
# analysis/detectors/heatmaps.py); every detector that attaches one gets a toggle on the item page.
OVERLAY_LABELS = {
    "ela": "ELA heatmap",
    "copy_move": "copy-move mask",
    "jpeg_local": "JPEG local misfit",
    "double_jpeg": "double-JPEG history",
    "noise_residual": "noise residual",
}


def is_overlay(name: str) -> bool:
    return name.endswith(("_heatmap.png", "_mask.png"))


def _item_context(request: HttpRequest, item: ReviewItem) -> dict[str, Any]:
    from media.storage import download_url

    me = _me(request)
    results = list(item.analysis.detector_results.all())
    detectors = []
    overlays = []
    for row in results:
        artifacts = []
        for artifact in row.artifacts or []:
            key = artifact.get("storage_key")
            if not key:
                continue
            url = download_url(key, expires=600)
            artifacts.append({"name": artifact.get("name"), "url": url})
            if is_overlay(str(artifact.get("name") or "")):
                overlays.append(
                    {"detector": row.detector, "url": url, "label": OVERLAY_LABELS.get(row.detector, row.detector)}
                )
        detectors.append(
            {
                "name": row.detector,
                "status": row.status,
                "score_pct": round(row.score * 100) if row.score is not None else None,
                "reasons": row.reasons or [],
                "facts": _plain_facts(row.evidence),
                "decisive": row.decisive or [],
                "artifacts": artifacts,
                "is_provenance": row.detector in ("provenance", "known_content"),
            }
        )
    mine = next((a for a in getattr(item, "active_assignments", []) if a.moderator_id == me.pk), None)
    decided_by_me = any(d.moderator_id == me.pk for d in item.decisions.all())
    return {
        "item": item,
        "media": item.media,
        "media_url": download_url(item.media.storage_key, expires=600) if item.media.storage_key else None,
        "overlays": overlays,
        "detectors": [d for d in detectors if not d["is_provenance"]],
        "provenance": [d for d in detectors if d["is_provenance"]],
        "breakdown": item.analysis.breakdown or {},
        "mine": mine,
        "decided_by_me": decided_by_me,
        "machine_leaning": services.machine_leaning(item),
        "decision_form": DecisionForm(),
        "escalate_form": EscalateForm(),
        "assign_form": _assign_form() if me.is_lead else None,
        "gold_form": _gold_form(item) if me.is_lead else None,
        "can_claim": item.is_open and mine is None and not decided_by_me and item.open_slots > 0,
        "nav_active": "queue",
    }


def _gold_form(item: ReviewItem) -> GoldForm | None:
    """Offered to leads on a decided ordinary item that is not gold yet, preset to its final verdict."""
    from review.models import GoldItem

    if item.is_gold_probe or item.status != ItemStatus.DECIDED or GoldItem.objects.filter(item=item).exists():
        return None
    return GoldForm(initial={"verdict": item.final_verdict})


def _assign_form() -> AssignForm:
    """The lead's assign form; only leads see it, so only they pay for the moderator list."""
    return AssignForm(moderators=[(u.username, f"{u.username} ({u.role})") for u in selectors.active_moderators()])


@require_GET
@moderator_required
def item_page(request: HttpRequest, item_id: Any) -> HttpResponse:
    # Renew first, then read: the page shows the renewed lease (renew ignores unknown ids).
    services.review_assignment_renew(item_id=item_id, user=_me(request))
    try:
        item = selectors.review_item_get(item_id=item_id, viewer=_me(request))
    except HlekkrError:
        return render(request, "dashboard/not_found.html", status=404)
    return render(request, "dashboard/item.html", _item_context(request, item))


def _act(
    request: HttpRequest, item_id: Any, action: Callable[[], Any], done: str, then: str = "dashboard:item"
) -> HttpResponse:
    """Run a service call for the item page: a refusal is flashed and leads back to the item; success is
    flashed and leads to `then`."""
    try:
        action()
    except HlekkrError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:item", item_id=item_id)
    messages.success(request, done)
    return redirect(then, item_id=item_id) if then == "dashboard:item" else redirect(then)


@require_POST
@lead_required
def item_gold(request: HttpRequest, item_id: Any) -> HttpResponse:
    form = GoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the accepted verdict: authentic or manipulated.")
        return redirect("dashboard:item", item_id=item_id)
    return _act(
        request,
        item_id,
        lambda: services.gold_item_mark(item_id=item_id, by=_me(request), verdict=form.cleaned_data["verdict"]),
        "Marked as a gold item.",
    )


@require_POST
@moderator_required
def item_claim(request: HttpRequest, item_id: Any) -> HttpResponse:
    return _act(request, item_id, lambda: services.review_item_claim(item_id=item_id, user=_me(request)), "Claimed.")


@require_POST
@moderator_required
def item_release(request: HttpRequest, item_id: Any) -> HttpResponse:
    return _act(
        request,
        item_id,
        lambda: services.review_item_release(item_id=item_id, user=_me(request)),
        "Released back to the queue.",
        then="dashboard:queue",
    )


@require_POST
@moderator_required
def item_decide(request: HttpRequest, item_id: Any) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
        return redirect("dashboard:item", item_id=item_id)
    try:
        item, _ = services.review_decision_submit(
            item_id=item_id,
            user=_me(request),
            verdict=form.cleaned_data["verdict"],
            confidence=form.cleaned_data["confidence"],
            notes=form.cleaned_data.get("notes") or "",
        )
    except HlekkrError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:item", item_id=item_id)
    if item.status == ItemStatus.DECIDED:
        messages.success(request, f"Decided: {item.final_verdict}.")
    elif item.status == ItemStatus.ESCALATED:
        messages.warning(request, "Reviewers disagree: the item went to a lead.")
    else:
        messages.success(request, "Decision recorded; waiting for the second reviewer.")
    return redirect("dashboard:mine")


@require_POST
@moderator_required
def item_escalate(request: HttpRequest, item_id: Any) -> HttpResponse:
    form = EscalateForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return _act(
        request,
        item_id,
        lambda: services.review_item_escalate(item_id=item_id, user=_me(request), note=note),
        "Escalated to the leads.",
    )


@require_POST
@lead_required
def item_assign(request: HttpRequest, item_id: Any) -> HttpResponse:
    username = request.POST.get("moderator", "")
    target = User.objects.filter(username=username).first()
    if target is None:
        messages.error(request, "Choose a moderator.")
        return redirect("dashboard:item", item_id=item_id)
    return _act(
        request,
        item_id,
        lambda: services.review_item_assign(item_id=item_id, moderator=target, by=_me(request)),
        f"Assigned to {username}.",
    )


@require_POST
@moderator_required
def item_heartbeat(request: HttpRequest, item_id: Any) -> HttpResponse:
    """htmx posts here every few minutes while the item page is open: the lease stays alive."""
    assignment = services.review_assignment_renew(item_id=item_id, user=_me(request))
    if assignment is None:
        return HttpResponse('<span class="lease expired">Your lease has ended.</span>')
    return render(request, "dashboard/_lease.html", {"mine": assignment})


# --- lead pages and stats --------------------------------------------------------------------------------------
@require_GET
@lead_required
def lead(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/lead.html", {**selectors.lead_desk(), "nav_active": "lead"})


@require_POST
@lead_required
def run_assignment(request: HttpRequest) -> HttpResponse:
    applied = services.review_assignment_run()
    messages.success(request, f"Assignment run: {applied} slot(s) assigned.")
    return redirect(reverse("dashboard:lead"))


@require_GET
@moderator_required
def stats(request: HttpRequest) -> HttpResponse:
    # Gold accuracy is about people: leads see it, moderators see the queue figures only.
    gold = selectors.gold_accuracy() if _me(request).is_lead else None
    return render(
        request, "dashboard/stats.html", {"stats": selectors.review_stats(), "gold": gold, "nav_active": "stats"}
    )
