"""ASGI entry point of the example shop: ``uvicorn example_shop.asgi:application``.

The checkout page's push channel (``/pay/<uuid>/events``) is an async view: under ASGI one process holds thousands
of open pages, each waiting for its session to change, where a WSGI server holds a thread per page. With DEBUG
(``make demo``), static files are served too, as ``runserver`` would.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")

application = get_asgi_application()
if settings.DEBUG:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
