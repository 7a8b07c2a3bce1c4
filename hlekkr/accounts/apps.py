from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hlekkr.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"
