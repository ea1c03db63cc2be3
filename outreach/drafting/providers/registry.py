"""The provider registry: every way to get a draft written, registered the same way, built-ins included.

A provider is named on the command line (``--provider``) or in ``OUTREACH_PROVIDER`` either by a registered
name (``offline``, ``openai``, ``anthropic``) or as ``NAME:MODEL`` (``openai:gpt-4.1-mini``,
``anthropic:claude-3-5-haiku-latest``, ``ollama:llama3.1``). Each module that offers providers has a
``register(registry)`` function; the built-in modules are registered first, then every installed package's
``outreach.providers`` entry point (a ``register(registry)`` callable, like llm's ``register_models`` hook), so
an addition needs no change here. A name nobody registered is handed to LangChain's ``init_chat_model`` by the
``*`` fallback, so any chat model LangChain has an integration for works with the same validation, retries,
cache and ledger.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from outreach.drafting.config import DraftingConfig
from outreach.drafting.providers.base import Provider
from outreach.drafting.providers.cache import ResponseCache
from outreach.errors import ConfigError
from outreach.settings import Settings

ENTRY_POINT_GROUP = "outreach.providers"
FALLBACK = "*"
BUILTIN_MODULES = (
    "outreach.drafting.providers.offline",
    "outreach.drafting.providers.openai",
    "outreach.drafting.providers.anthropic",
    "outreach.drafting.providers.langchain",
)


@dataclass(frozen=True)
class ProviderRequest:
    """What a factory gets: the provider name as asked for, the model after the colon (if any), settings,
    drafting configuration and the response cache (None when caching is off)."""

    name: str
    model: str | None
    settings: Settings
    config: DraftingConfig
    cache: ResponseCache | None


ProviderFactory = Callable[[ProviderRequest], Provider]


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    description: str
    factory: ProviderFactory
    needs_model: bool = False


class ProviderRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}

    def register(self, spec: ProviderSpec) -> None:
        """Add a provider; a second registration of a name replaces the first (a plugin may override)."""
        self._specs[spec.name] = spec

    def names(self) -> list[str]:
        return [name for name in self._specs if name != FALLBACK]

    def specs(self) -> list[ProviderSpec]:
        return list(self._specs.values())

    def resolve(self, name: str, model: str | None = None) -> ProviderSpec:
        """The spec registered as ``name``; an unregistered ``NAME:MODEL`` goes to the ``*`` fallback."""
        spec = self._specs.get(name) or (self._specs.get(FALLBACK) if model else None)
        if spec is None:
            raise ConfigError(f"unknown provider '{name}'",
                              hint=f"use one of: {', '.join(self.names())}, or NAME:MODEL for a LangChain provider")
        return spec


_REGISTRY: ProviderRegistry | None = None


def provider_registry() -> ProviderRegistry:
    """The registry with the built-ins and every installed plugin registered (loaded once)."""
    global _REGISTRY
    if _REGISTRY is None:
        registry = ProviderRegistry()
        for module in BUILTIN_MODULES:
            importlib.import_module(module).register(registry)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            entry.load()(registry)
        _REGISTRY = registry
    return _REGISTRY


def split_name(value: str) -> tuple[str, str | None]:
    """``'anthropic:claude-3-5-haiku-latest'`` → ('anthropic', 'claude-3-5-haiku-latest'); ``'offline'`` → ('offline', None)."""
    name, _, model = value.strip().partition(":")
    return name.strip().lower(), (model.strip() or None)
