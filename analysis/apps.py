import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class AnalysisConfig(AppConfig):
    name = "analysis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analysis import subscribers

        subscribers.register()
        try:
            from media.extensions import register_detail_provider
        except ImportError:  # the media app without detail extensions: the analysis API still works
            logger.warning("media.extensions is missing; media detail will not show analyses")
        else:
            from analysis.api.detail import media_detail_analysis

            register_detail_provider(media_detail_analysis)
