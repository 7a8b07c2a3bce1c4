from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from rest_framework_simplejwt.token_blacklist.admin import BlacklistedTokenAdmin, OutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from hlekkr.accounts import auth_cache
from hlekkr.accounts.authentication import request_user
from hlekkr.accounts.models import ApiKey, User
from hlekkr.accounts.services import (
    api_key_check_new,
    api_key_create,
    api_key_revoke,
    api_key_update,
)
from hlekkr.audit.admin import AuditedAdminMixin, AuditedModelAdmin
from hlekkr.exceptions import ValidationFailed


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("user", "name", "scopes", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is None:
            # The service's own rules, as form errors instead of a 500 from save_model.
            try:
                api_key_check_new(scopes=cleaned.get("scopes"), expires_at=cleaned.get("expires_at"))
            except ValidationFailed as exc:
                field = "expires_at" if exc.code == "invalid_expiry" else "scopes"
                self.add_error(field, exc.message)
        return cleaned


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "is_staff")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Hlekkr", {"fields": ("role",)}))  # type: ignore[misc]
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Hlekkr", {"fields": ("role",)}))

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A role or active flag changed here applies at once in this process, in the others within
        # HLEKKR_AUTH_CACHE_SECONDS (hlekkr/accounts/auth_cache.py).
        transaction.on_commit(lambda: auth_cache.forget_user(obj.pk))
        auth_cache.forget_user(obj.pk)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Django saves the new password and logs the change outside a transaction; audit it atomically with it.
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)


# Django's and simplejwt's own admins, re-registered on the audited base (tests/hlekkr/test_admin_audit.py).
# simplejwt's outstanding-token page shows each refresh token whole, which is a credential: only its jti here.
_TOKEN_FIELDS = {"fields": ("jti", "user", "created_at", "expires_at")}
for _model, _admin_class, _attrs in ((Group, GroupAdmin, {}), (OutstandingToken, OutstandingTokenAdmin, _TOKEN_FIELDS),
                                     (BlacklistedToken, BlacklistedTokenAdmin, {})):  # fmt: skip
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin_class.__name__, (AuditedAdminMixin, _admin_class), _attrs))


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    form = ApiKeyForm
    # Never the secret's hash: it is not reversible, but it is what a stolen key is checked against.
    readonly_fields = ("prefix", "created_at", "revoked_at", "last_used_at")
    fields = ("user", "name", "scopes", "expires_at", *readonly_fields)
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        # Only the name and expiry may change after creation: a key's owner and scopes are what it was issued as.
        return (("user", "scopes") if obj is not None else ()) + self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            api_key_update(api_key=obj, name=obj.name, expires_at=obj.expires_at, actor=request_user(request))
            return
        issued = api_key_create(
            user=obj.user,
            name=obj.name,
            scopes=list(obj.scopes or []),
            expires_at=obj.expires_at,
            actor=request_user(request),
        )
        obj.pk = issued.api_key.pk
        obj.prefix, obj.secret_hash = issued.api_key.prefix, issued.api_key.secret_hash
        messages.warning(request, f"Copy the key now; it will not be shown again: {issued.plaintext}")

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=key, actor=request_user(request))
