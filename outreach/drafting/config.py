"""Drafting configuration (drafting.yaml): validation policy, untrusted-text budget, OpenAI limits, prices.

Defaults live in ``outreach/defaults/drafting.yaml`` so the file doubles as documentation; a data directory
may carry its own ``drafting.yaml`` and ``outreach draft --config FILE`` overrides both. Only the keys given
are overridden (a deep merge), so a team can change one banned phrase without copying the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from outreach import bundled
from outreach.yamlfile import deep_merge, validate_yaml

DEFAULTS_PATH = bundled.DRAFTING


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidationPolicy(_Strict):
    """What every draft is checked against, whichever provider wrote it (docs/drafting.md)."""

    max_subject_chars: int = Field(default=80, gt=0)
    max_body_chars: int = Field(default=1200, gt=0)
    max_body_words: int = Field(default=180, gt=0)
    max_discount_pct: float | None = Field(
        default=None, ge=0, le=100, description="None: the catalog's policy.max_discount_pct."
    )
    allowed_domains: list[str] = Field(default_factory=list)
    banned_phrases: list[str] = Field(default_factory=list)


class UntrustedBudget(_Strict):
    """How much customer-written text (ticket subjects and bodies) a prompt may carry, as data."""

    max_tickets: int = Field(default=5, ge=0)
    subject_chars: int = Field(default=120, gt=0)
    excerpt_chars: int = Field(default=200, ge=0)
    total_chars: int = Field(default=1200, ge=0)


class OpenAIOptions(_Strict):
    concurrency: int = Field(default=4, gt=0)
    requests_per_minute: int = Field(default=500, gt=0)
    tokens_per_minute: int = Field(default=200_000, gt=0)
    max_attempts: int = Field(default=4, gt=0)
    max_rate_limit_retries: int = Field(
        default=8, ge=0, description="Extra attempts a draft may spend on 429s (each honours Retry-After)."
    )
    max_wait_seconds: float = Field(default=60, gt=0)
    timeout_seconds: float = Field(default=60, gt=0)
    repair_attempts: int = Field(default=1, ge=0)


class ModelPrice(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


class DraftingConfig(_Strict):
    validation: ValidationPolicy = Field(default_factory=ValidationPolicy)
    untrusted: UntrustedBudget = Field(default_factory=UntrustedBudget)
    openai: OpenAIOptions = Field(default_factory=OpenAIOptions)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)


def load_drafting_config(*paths: Path | None) -> DraftingConfig:
    """Defaults < the workspace's ``drafting.yaml`` (``outreach init``) < each existing path in order. Problems
    are reported with the file, line and field."""
    text = DEFAULTS_PATH.read_text(encoding="utf-8")
    config = validate_yaml(DraftingConfig, text, DEFAULTS_PATH)
    data: dict[str, Any] = yaml.safe_load(text) or {}
    for path in (bundled.workspace_layer("drafting"), *paths):
        if path is None or not path.exists():
            continue
        override_text = path.read_text(encoding="utf-8")
        validate_yaml(DraftingConfig, override_text, path)  # reports problems as file:line: field
        data = deep_merge(data, yaml.safe_load(override_text) or {})
        config = DraftingConfig.model_validate(data)
    return config
