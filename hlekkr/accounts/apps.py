from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hlekkr.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from hlekkr.accounts import schema  # noqa: F401  (registers the OpenAPI auth extensions)
