"""Azure OpenAI: the OpenAI wire format at a deployment's URL, with an `api-key` header and an api-version query.

Everything but the URL and the key header is the OpenAI adapter's: Azure speaks Chat Completions.
"""

from __future__ import annotations

from urllib.parse import quote

from gateway.providers.base import ProviderSettings
from gateway.providers.openai import OpenAIProvider

NAME = "azure_openai"


class AzureOpenAIProvider(OpenAIProvider):
    """One Azure deployment: {base_url}/openai/deployments/{deployment}/chat/completions?api-version=..."""

    name = NAME

    def __init__(self, settings: ProviderSettings, deployment: str, api_version: str, *args, **kwargs) -> None:
        self.path = (f"/openai/deployments/{quote(deployment, safe='')}/chat/completions"
                     f"?api-version={quote(api_version, safe='')}")
        super().__init__(settings, *args, **kwargs)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}
