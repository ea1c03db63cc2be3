"""The ``openai`` provider: any OpenAI-compatible Chat Completions server, through LangChain's ``init_chat_model``.

api.openai.com by default; vLLM, Ollama's OpenAI endpoint, llama-cpp-python's server and the like through
``OPENAI_BASE_URL``. Always the Chat Completions API (``use_responses_api=False``: compatible servers do not
implement the Responses API). Structured output is negotiated per server (json_schema → json_object → tools,
or fixed with ``OUTREACH_STRUCTURED_OUTPUT``); retries, cache and ledger are those of
:class:`~outreach.drafting.providers.chat.ChatProvider`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from outreach.drafting.config import DraftingConfig
from outreach.drafting.providers.cache import ResponseCache
from outreach.drafting.providers.chat import ChatProvider, Sleep
from outreach.drafting.providers.chat import retry_after_seconds as retry_after_seconds
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.providers.registry import ProviderRegistry, ProviderRequest, ProviderSpec
from outreach.drafting.templates import ModelParams
from outreach.errors import ConfigError, ProviderError
from outreach.settings import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(ChatProvider):
    """Drafts through an OpenAI-compatible server. ``limiter`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        config: DraftingConfig,
        *,
        model: str | None = None,
        cache: ResponseCache | None = None,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if settings.openai_api_key is None:
            raise ProviderError("the openai provider needs an API key", hint="set OPENAI_API_KEY")
        self.settings = settings
        chosen = model or settings.openai_model
        base_url = settings.openai_base_url or DEFAULT_BASE_URL

        def make(params: ModelParams) -> Any:
            import openai
            from langchain.chat_models import init_chat_model

            api_key = settings.openai_api_key
            extra: dict[str, Any] = {}
            if params.top_p is not None:
                extra["top_p"] = params.top_p
            if params.seed is not None:
                extra["seed"] = params.seed
            return init_chat_model(
                chosen,
                model_provider="openai",
                api_key=api_key.get_secret_value() if api_key else None,
                base_url=base_url,
                max_retries=0,  # retries happen in exactly one layer: tenacity, in ChatProvider
                timeout=config.openai.timeout_seconds,
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                use_responses_api=False,
                # Its own connection pool: LangChain shares one per base URL process-wide, which breaks when a
                # caller (the queue's regeneration) runs each request on a fresh event loop.
                http_async_client=openai.DefaultAsyncHttpxClient(timeout=config.openai.timeout_seconds),
                **extra,
            )

        super().__init__(
            "openai", chosen, config, make, endpoint=base_url.rstrip("/"),
            structured_output=settings.structured_output, cache=cache, limiter=limiter, sleep=sleep,
        )


def _factory(request: ProviderRequest) -> OpenAIProvider:
    if request.settings.openai_api_key is None:
        raise ConfigError(
            "the openai provider needs an API key",
            hint="set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), or use --provider offline",
        )
    return OpenAIProvider(request.settings, request.config, model=request.model, cache=request.cache)


def register(registry: ProviderRegistry) -> None:
    registry.register(ProviderSpec(
        name="openai",
        description="OpenAI or any OpenAI-compatible server (OPENAI_BASE_URL: vLLM, Ollama, llama.cpp); "
                    "model from OUTREACH_OPENAI_MODEL or openai:MODEL",
        factory=_factory,
    ))
