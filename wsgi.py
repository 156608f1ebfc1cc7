"""gunicorn entry point: `gunicorn wsgi:app`."""

from gateway import create_app
from gateway.sweeper import start_sweeper

app = create_app()
start_sweeper(app)
