"""outreach: turn product-usage and support signals into reviewed, friction-led SaaS expansion emails.

The pipeline is a library; the CLI (``outreach.cli.main``) and the web app are thin layers over it.
"""

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
