"""Marshmallow schemas: the shape of request bodies and query strings, nothing more."""
