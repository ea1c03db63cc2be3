"""outreach: turn product-usage and support signals into reviewed, friction-led SaaS expansion emails.

The pipeline is a library; the CLI (``outreach.cli.main``) and the web app are thin layers over it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outreach.drafting.config import DraftingConfig, ValidationPolicy, load_drafting_config
    from outreach.drafting.drafts import (
        DraftingContext,
        DraftRecord,
        RunSummary,
        draft_all,
        open_workspace,
        run_drafts,
        write_draft,
        write_jsonl,
    )
    from outreach.drafting.facts import DraftFacts, build_facts, fact_variables
    from outreach.drafting.ledger import TokenUsage
    from outreach.drafting.providers import Provider, get_provider
    from outreach.drafting.providers.base import Draft
    from outreach.drafting.registry import load_templates
    from outreach.drafting.templates import PromptTemplate, RenderedPrompt, render
    from outreach.drafting.validation import Issue, validate_draft
    from outreach.engine.catalog import Catalog, load_catalog
    from outreach.engine.data import Account, Dataset, Ticket, load_dataset
    from outreach.engine.decisions import Decision, decide, decide_records, explain, explain_json, rules_for
    from outreach.engine.friction import Friction
    from outreach.engine.health import Gate, GateReason, Health
    from outreach.engine.offers import Offer
    from outreach.engine.rules import Rules, load_rules
    from outreach.engine.triggers.detection import Signal, detect_signals
    from outreach.errors import (
        ConfigError,
        ConflictError,
        DataError,
        InputError,
        NotFoundError,
        OutreachError,
        PermissionDeniedError,
        ProviderError,
    )
    from outreach.settings import Settings, get_settings

# Each public name and the module that defines it. Importing ``outreach`` (or any ``outreach.x`` module, which
# imports this package first) loads none of them: the CLI starts in a fraction of a second, and a name's module
# is imported the first time the name is used (PEP 562).
_LAZY = {
    "Account": "outreach.engine.data",
    "Catalog": "outreach.engine.catalog",
    "ConfigError": "outreach.errors",
    "ConflictError": "outreach.errors",
    "DataError": "outreach.errors",
    "Dataset": "outreach.engine.data",
    "Decision": "outreach.engine.decisions",
    "Draft": "outreach.drafting.providers.base",
    "DraftFacts": "outreach.drafting.facts",
    "DraftRecord": "outreach.drafting.drafts",
    "DraftingConfig": "outreach.drafting.config",
    "DraftingContext": "outreach.drafting.drafts",
    "Friction": "outreach.engine.friction",
    "Gate": "outreach.engine.health",
    "GateReason": "outreach.engine.health",
    "Health": "outreach.engine.health",
    "InputError": "outreach.errors",
    "Issue": "outreach.drafting.validation",
    "NotFoundError": "outreach.errors",
    "Offer": "outreach.engine.offers",
    "OutreachError": "outreach.errors",
    "PermissionDeniedError": "outreach.errors",
    "PromptTemplate": "outreach.drafting.templates",
    "Provider": "outreach.drafting.providers",
    "ProviderError": "outreach.errors",
    "RenderedPrompt": "outreach.drafting.templates",
    "Rules": "outreach.engine.rules",
    "RunSummary": "outreach.drafting.drafts",
    "Settings": "outreach.settings",
    "Signal": "outreach.engine.triggers.detection",
    "Ticket": "outreach.engine.data",
    "TokenUsage": "outreach.drafting.ledger",
    "ValidationPolicy": "outreach.drafting.config",
    "build_facts": "outreach.drafting.facts",
    "decide": "outreach.engine.decisions",
    "decide_records": "outreach.engine.decisions",
    "detect_signals": "outreach.engine.triggers.detection",
    "draft_all": "outreach.drafting.drafts",
    "explain": "outreach.engine.decisions",
    "explain_json": "outreach.engine.decisions",
    "fact_variables": "outreach.drafting.facts",
    "get_provider": "outreach.drafting.providers",
    "get_settings": "outreach.settings",
    "load_catalog": "outreach.engine.catalog",
    "load_dataset": "outreach.engine.data",
    "load_drafting_config": "outreach.drafting.config",
    "load_rules": "outreach.engine.rules",
    "load_templates": "outreach.drafting.registry",
    "open_workspace": "outreach.drafting.drafts",
    "render": "outreach.drafting.templates",
    "rules_for": "outreach.engine.decisions",
    "run_drafts": "outreach.drafting.drafts",
    "validate_draft": "outreach.drafting.validation",
    "write_draft": "outreach.drafting.drafts",
    "write_jsonl": "outreach.drafting.drafts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'outreach' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__version__ = "0.1.0"

__all__ = [
    "Account",
    "Catalog",
    "ConfigError",
    "ConflictError",
    "DataError",
    "Dataset",
    "Decision",
    "Draft",
    "DraftFacts",
    "DraftRecord",
    "DraftingConfig",
    "DraftingContext",
    "Friction",
    "Gate",
    "GateReason",
    "Health",
    "InputError",
    "Issue",
    "NotFoundError",
    "Offer",
    "OutreachError",
    "PermissionDeniedError",
    "PromptTemplate",
    "Provider",
    "ProviderError",
    "RenderedPrompt",
    "Rules",
    "RunSummary",
    "Settings",
    "Signal",
    "Ticket",
    "TokenUsage",
    "ValidationPolicy",
    "__version__",
    "build_facts",
    "decide",
    "decide_records",
    "detect_signals",
    "draft_all",
    "explain",
    "explain_json",
    "fact_variables",
    "get_provider",
    "get_settings",
    "load_catalog",
    "load_dataset",
    "load_drafting_config",
    "load_rules",
    "load_templates",
    "open_workspace",
    "render",
    "rules_for",
    "run_drafts",
    "validate_draft",
    "write_draft",
    "write_jsonl",
]
