"""Dashboard forms: labelled fields, validated here; the services enforce the domain rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from review.models import HumanVerdict, ItemStatus, Priority


class ModeratorLoginForm(AuthenticationForm):
    """Only moderators, leads and admins get a session here; a client is turned away at the form."""

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not getattr(user, "is_moderator", False):
            raise forms.ValidationError(
                "This dashboard is for moderators. Clients use the API.", code="not_a_moderator"
            )


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Open (any)"), *ItemStatus.choices], required=False)
    priority = forms.ChoiceField(choices=[("", "Any"), *Priority.choices], required=False)
    expertise = forms.ChoiceField(
        choices=[("", "Any")]
        + [
            (t, t.replace("_", " "))
            for t in ("image", "video", "audio_voice", "face_manipulation", "provenance", "generated")
        ],
        required=False,
    )
    overdue = forms.BooleanField(required=False, label="Overdue only")


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=HumanVerdict.choices, widget=forms.RadioSelect)
    confidence = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        initial=0.8,
        widget=forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": "1"}),
        help_text="0 (a guess) to 1 (certain). Keys 1 to 9 set 0.1 to 0.9, 0 sets 1.0.",
    )
    notes = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when your verdict overrides the machine's.",
    )


class EscalateForm(forms.Form):
    note = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Why escalate?")


class AssignForm(forms.Form):
    moderator = forms.ChoiceField(choices=[], label="Assign to")

    def __init__(self, *args: Any, moderators: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["moderator"].choices = moderators or []  # type: ignore[attr-defined]


class GoldForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=[(HumanVerdict.AUTHENTIC, "Authentic"), (HumanVerdict.MANIPULATED, "Manipulated")],
        label="Accepted verdict",
    )
