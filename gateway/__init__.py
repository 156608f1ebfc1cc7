"""Dominion Gateway. The app factory is gateway.app.create_app; this package root imports nothing."""
