import os

from django.core.wsgi import get_wsgi_application

from hlekkr.unread_body import UnreadBodyGuard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")
# The guard drains (or closes after) a body a refusal left unread, so keep-alive connections stay usable.
application = UnreadBodyGuard(get_wsgi_application())
