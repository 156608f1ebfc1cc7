"""gunicorn entry point: `gunicorn wsgi:app`; a bad setting ends start-up with one line."""

from gateway.app import serve_app
from gateway.sweeper import start_sweeper

app = serve_app()
start_sweeper(app)
