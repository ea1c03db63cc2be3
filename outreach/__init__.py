"""outreach: turn product-usage and support signals into reviewed, friction-led SaaS expansion emails.

The pipeline is a library; the CLI (``outreach.cli``) and the web app are thin layers over it.
"""

from outreach.catalog import Catalog, load_catalog
from outreach.data import Account, Dataset, Ticket, load_dataset
from outreach.decisions import Decision, decide, explain, rules_for
from outreach.errors import (
    ConfigError,
    ConflictError,
    DataError,
    NotFoundError,
    OutreachError,
    PermissionDeniedError,
    ProviderError,
)
from outreach.friction import Friction
from outreach.health import Gate, GateReason, Health
from outreach.offers import Offer, choose_offer
from outreach.rules import Rules, load_rules
from outreach.settings import Settings, get_settings
from outreach.signals import Signal, detect_signals

__version__ = "0.1.0"

__all__ = [
    "Account",
    "Catalog",
    "ConfigError",
    "ConflictError",
    "DataError",
    "Dataset",
    "Decision",
    "Friction",
    "Gate",
    "GateReason",
    "Health",
    "NotFoundError",
    "Offer",
    "OutreachError",
    "PermissionDeniedError",
    "ProviderError",
    "Rules",
    "Settings",
    "Signal",
    "Ticket",
    "__version__",
    "choose_offer",
    "decide",
    "detect_signals",
    "explain",
    "get_settings",
    "load_catalog",
    "load_dataset",
    "load_rules",
    "rules_for",
]
