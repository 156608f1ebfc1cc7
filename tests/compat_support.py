"""Shared pieces of the drop-in tests: a live gateway with a key, SDK clients pointed at it, the audit log,
and small fixtures of tools, images and schemas. Each test asks through a real client, over real HTTP,
and checks both the answer and the request the fake upstream received (which validates like the real API).
"""

from __future__ import annotations

import base64

import anthropic
import openai
import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import create_account

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
CLAUDE_UPSTREAM = "claude-haiku-4-5-20251001"
MODELS = [GPT, CLAUDE]
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PNG_B64 = base64.b64encode(PNG_BYTES).decode()
PNG_DATA_URL = f"data:image/png;base64,{PNG_B64}"
IMAGE_URL = "https://example.com/cat.png"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TIME_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
                                      "parameters": TIME_SCHEMA}},
]
ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Time in a zone", "input_schema": TIME_SCHEMA},
]


@pytest.fixture
def gateway(app, client, admin_headers, live_server_factory):
    """(live server, account) for the SDKs."""
    account = create_account(client, admin_headers)
    return live_server_factory(app), account


def openai_sdk(gateway) -> openai.OpenAI:
    server, account = gateway
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=account.api_key, max_retries=0)


def anthropic_sdk(gateway) -> anthropic.Anthropic:
    server, account = gateway
    return anthropic.Anthropic(base_url=server.url, api_key=account.api_key, max_retries=0)


def audit(app) -> list[UsageRecord]:
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


def sent(fake_upstream) -> dict:
    """The body of the last request the fake upstream received."""
    return fake_upstream.requests[-1].body


def upstream_path(model: str) -> str:
    return "/v1/messages" if model.startswith("claude") else "/v1/chat/completions"
