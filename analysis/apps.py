from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analysis import conf, subscribers
        from analysis.api.detail import media_detail_analysis
        from media.extensions import register_detail_provider

        conf.check()  # a configuration the pipeline cannot use refuses to start (docs/analysis.md)
        subscribers.register()
        register_detail_provider(media_detail_analysis)
