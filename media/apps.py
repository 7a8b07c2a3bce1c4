from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from media import conf

        conf.check()  # a bad upload limit refuses to start rather than failing uploads
