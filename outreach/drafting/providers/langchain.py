"""Any chat model LangChain's ``init_chat_model`` can build, as ``NAME:MODEL`` (the registry's ``*`` fallback).

``ollama:llama3.1`` (langchain-ollama), ``mistralai:mistral-large-latest``, ``groq:…``, ``google_genai:…`` —
LangChain picks the integration package by the name, which must be installed, and each reads its own API key
from the environment (``MISTRAL_API_KEY``, ``GROQ_API_KEY`` …). Structured output is negotiated like every
other provider's (json_schema, then json_object where the integration offers it, then tool calling), with
the same retries, cache and ledger.
"""

from __future__ import annotations

from typing import Any

from outreach.drafting.providers.chat import ChatFactory, ChatProvider
from outreach.drafting.providers.registry import FALLBACK, ProviderRegistry, ProviderRequest, ProviderSpec
from outreach.drafting.templates import ModelParams
from outreach.errors import ConfigError


def chat_factory(provider: str, model: str, timeout: float, **fixed: Any) -> ChatFactory:
    """A factory building ``provider:model`` with ``init_chat_model``, SDK retries off (tenacity retries)."""

    def make(params: ModelParams) -> Any:
        from langchain.chat_models import init_chat_model

        extra: dict[str, Any] = dict(fixed)
        if params.top_p is not None:
            extra["top_p"] = params.top_p
        return init_chat_model(
            model, model_provider=provider, temperature=params.temperature, max_tokens=params.max_tokens,
            timeout=timeout, max_retries=0, **extra,
        )

    return make


def check_factory(provider: str, factory: ChatFactory) -> None:
    """Build the model once now, so a missing integration package or API key is one clear error up front."""
    try:
        factory(ModelParams())
    except ImportError as error:
        raise ConfigError(
            f"the {provider} provider needs its LangChain integration: {error}",
            hint=f"pip install langchain-{provider.replace('_', '-')}",
        ) from None
    except ValueError as error:
        raise ConfigError(f"LangChain cannot build a '{provider}' chat model: {str(error).splitlines()[0]}",
                          hint="see `outreach draft --help` for provider names; NAME:MODEL, e.g. ollama:llama3.1") from None
    except Exception as error:  # the integrations validate credentials in their constructors
        raise ConfigError(f"the {provider} provider is not configured: {str(error).splitlines()[0][:200]}",
                          hint=f"set the API key the {provider} integration reads from the environment") from None


def _factory(request: ProviderRequest) -> ChatProvider:
    if not request.model:
        raise ConfigError(f"provider '{request.name}' needs a model", hint=f"use --provider {request.name}:MODEL")
    factory = chat_factory(request.name, request.model, request.config.openai.timeout_seconds)
    check_factory(request.name, factory)
    return ChatProvider(
        request.name, request.model, request.config, factory, endpoint=request.name,
        structured_output=request.settings.structured_output, cache=request.cache,
    )


def register(registry: ProviderRegistry) -> None:
    registry.register(ProviderSpec(
        name=FALLBACK,
        description="any NAME:MODEL LangChain's init_chat_model supports (its integration package installed)",
        factory=_factory,
        needs_model=True,
    ))
