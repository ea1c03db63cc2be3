"""Draft providers: who writes the email text from a rendered prompt and its facts.

``offline`` renders a deterministic email from the facts with Jinja2 (no network, the default when no API
key is configured); ``openai`` asks any OpenAI-compatible server (api.openai.com, vLLM, Ollama, llama.cpp)
for structured output; ``anthropic`` and any other ``NAME:MODEL`` go through LangChain's ``init_chat_model``.
Providers register themselves (:mod:`outreach.drafting.providers.registry`). All return a
:class:`~outreach.drafting.providers.base.ProviderResult`; the caller validates it, so no provider is trusted
more than another.
"""

from __future__ import annotations

from outreach.drafting.config import DraftingConfig
from outreach.drafting.providers.base import Provider
from outreach.drafting.providers.registry import ProviderRequest, provider_registry, split_name
from outreach.settings import Settings


def provider_names() -> list[str]:
    """The registered provider names (any other ``NAME:MODEL`` goes to LangChain's ``init_chat_model``)."""
    return provider_registry().names()


def default_provider_name(settings: Settings) -> str:
    """``OUTREACH_PROVIDER`` if set; otherwise openai when an API key is configured, else offline."""
    if settings.provider:
        return settings.provider
    return "openai" if settings.openai_api_key is not None else "offline"


def get_provider(
    name: str | None,
    settings: Settings,
    config: DraftingConfig | None = None,
    *,
    use_cache: bool = True,
) -> Provider:
    """The provider called ``name`` (``offline``, ``openai``, ``anthropic:MODEL``, ``NAME:MODEL`` …; default for
    these settings)."""
    from outreach.drafting.providers.cache import ResponseCache, default_cache_path

    provider_name, model = split_name(name or default_provider_name(settings))
    spec = provider_registry().resolve(provider_name, model)
    cache = ResponseCache(default_cache_path(settings)) if use_cache and provider_name != "offline" else None
    request = ProviderRequest(name=provider_name, model=model, settings=settings, config=config or DraftingConfig(),
                              cache=cache)
    return spec.factory(request)


__all__ = ["Provider", "default_provider_name", "get_provider", "provider_names"]
