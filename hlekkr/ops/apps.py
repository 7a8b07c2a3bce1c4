from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "hlekkr.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.conf import settings

        from hlekkr.env import check_bounds

        # Values set in a settings module get the bounds their environment readers declare (hlekkr/env.py).
        check_bounds(settings)
