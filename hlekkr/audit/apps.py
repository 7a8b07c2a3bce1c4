from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "hlekkr.audit"
    label = "audit"
    verbose_name = "Audit log"
