"""Draft providers: who writes the email text from a rendered prompt and its facts.

``offline`` renders a deterministic email from the facts with Jinja2 (no network, the default when no API
key is configured); ``openai`` asks any OpenAI-compatible chat model for structured output. Both return a
:class:`~outreach.drafting.providers.base.ProviderResult`; the caller validates it, so no provider is trusted more than another.
"""

from __future__ import annotations

from collections.abc import Sequence

from outreach.drafting.config import DraftingConfig
from outreach.drafting.providers.base import Provider
from outreach.errors import ConfigError
from outreach.settings import Settings

PROVIDERS: Sequence[str] = ("offline", "openai")


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
    """The provider called ``name`` (or the default for these settings)."""
    chosen = name or default_provider_name(settings)
    if chosen == "offline":
        from outreach.drafting.providers.offline import OfflineProvider

        return OfflineProvider()
    if chosen == "openai":
        from outreach.drafting.providers.cache import ResponseCache, default_cache_path
        from outreach.drafting.providers.openai import OpenAIProvider

        if settings.openai_api_key is None:
            raise ConfigError(
                "the openai provider needs an API key",
                hint="set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), or use --provider offline",
            )
        cache = ResponseCache(default_cache_path(settings)) if use_cache else None
        return OpenAIProvider(settings, config or DraftingConfig(), cache=cache)
    raise ConfigError(f"unknown provider '{chosen}'", hint=f"use one of: {', '.join(PROVIDERS)}")


__all__ = ["PROVIDERS", "Provider", "default_provider_name", "get_provider"]
