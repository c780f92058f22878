"""Model apps for real servers (gunicorn, uvicorn); the config path comes from the environment."""

import os

from .model_apps import fastapi_app, flask_app, wsgi_app

CONFIG = os.environ.get("BOXKITE_CONFIG") or None

flask = flask_app(CONFIG)
fastapi = fastapi_app(CONFIG)

bare_wsgi = wsgi_app(CONFIG)
