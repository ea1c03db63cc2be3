"""The ``anthropic`` provider: Claude through LangChain's ``init_chat_model`` (langchain-anthropic), as
``anthropic:MODEL``.

The Messages API has no ``response_format: json_object``, so structured output is negotiated between
Claude's native structured outputs (``json_schema``) and a forced tool call (``tools``); the same retries
(429 and 529 "overloaded" honour ``retry-after``), cache and ledger as every provider. The key comes from
``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

from outreach.drafting.providers.chat import ChatProvider
from outreach.drafting.providers.langchain import chat_factory, check_factory
from outreach.drafting.providers.registry import ProviderRegistry, ProviderRequest, ProviderSpec
from outreach.errors import ConfigError

DEFAULT_MODEL = "claude-3-5-haiku-latest"
ENDPOINT = "https://api.anthropic.com"


def _factory(request: ProviderRequest) -> ChatProvider:
    key = request.settings.anthropic_api_key
    if key is None:
        raise ConfigError("the anthropic provider needs an API key", hint="set ANTHROPIC_API_KEY")
    model = request.model or DEFAULT_MODEL
    factory = chat_factory("anthropic", model, request.config.openai.timeout_seconds,
                           api_key=key.get_secret_value())
    check_factory("anthropic", factory)
    return ChatProvider(
        "anthropic", model, request.config, factory, endpoint=ENDPOINT,
        structured_output=request.settings.structured_output, methods=("tools", "json_schema"),
        cache=request.cache,
    )


def register(registry: ProviderRegistry) -> None:
    registry.register(ProviderSpec(
        name="anthropic",
        description=f"Anthropic Claude via langchain-anthropic (ANTHROPIC_API_KEY); anthropic:MODEL, "
                    f"default {DEFAULT_MODEL}",
        factory=_factory,
    ))
