from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "hlekkr.ops"
    label = "ops"
    verbose_name = "Operations"
