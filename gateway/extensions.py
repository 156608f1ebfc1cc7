"""Unbound extension instances, bound to an app in create_app."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from gateway.net import client_ip
from gateway.rate_limits import GatewayLimiter, per_ip_limit


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
# The per-IP limit is declared here, not as RATELIMIT_APPLICATION, so that it is parsed once per value.
limiter = GatewayLimiter(key_func=client_ip, application_limits=[per_ip_limit()])
