"""Settings of the web process the live keep-alive test starts: the real settings with rate limits off (the
test sends a hundred uploads in seconds; what it measures is the connection, not the limiter)."""

from hlekkr.settings import *  # noqa: F403

RATELIMIT_ENABLE = False
