"""The offline drafter: a real, readable friction-led email rendered from the facts, with no model.

It is the default when no API key is configured and the fallback when an LLM draft fails validation. It
renders ``outreach/templates/offline_email.txt.j2`` from :class:`~outreach.drafting.facts.DraftFacts` (never from
customer-written ticket text), so it is deterministic: the same facts always give the same email.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from outreach.drafting.facts import DraftFacts, template_context
from outreach.drafting.providers.base import Draft, ProviderResult, RepairRequest
from outreach.drafting.providers.registry import ProviderRegistry, ProviderSpec
from outreach.drafting.templates import RenderedPrompt, make_environment

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
OFFLINE_TEMPLATE = "offline_email.txt.j2"


def _block(template: jinja2.Template, name: str, facts: DraftFacts) -> str:
    context = template.new_context(template_context(facts))
    text = "".join(template.blocks[name](context))
    lines = [line.rstrip() for line in text.strip().splitlines()]
    cleaned: list[str] = []
    for line in lines:  # at most one blank line in a row
        if line or (cleaned and cleaned[-1]):
            cleaned.append(line)
    return "\n".join(cleaned).strip()


def draft_offline(facts: DraftFacts, template_dir: Path = TEMPLATES) -> Draft:
    """Render the offline email for ``facts``."""
    env = make_environment(jinja2.FileSystemLoader(str(template_dir)))
    template = env.get_template(OFFLINE_TEMPLATE)
    used = [facts.primary.id]
    if facts.offer.kind == "bundle" and facts.supporting:
        used.append(facts.supporting[0].id)
    return Draft(
        subject=_block(template, "subject", facts),
        body=_block(template, "body", facts),
        call_to_action=_block(template, "call_to_action", facts),
        friction_ids=used,
        offer_id=facts.offer.id,
    )


class OfflineProvider:
    name = "offline"
    model = "offline-jinja2"

    def __init__(self, template_dir: Path = TEMPLATES) -> None:
        self.template_dir = template_dir

    async def generate(
        self, prompt: RenderedPrompt, facts: DraftFacts, *, repair: RepairRequest | None = None
    ) -> ProviderResult:
        """The prompt is not needed (the facts are), and a repair cannot change a deterministic draft."""
        return ProviderResult(draft=draft_offline(facts, self.template_dir), model=self.model)


def register(registry: ProviderRegistry) -> None:
    registry.register(ProviderSpec(
        name="offline",
        description="deterministic drafts from the facts with Jinja2; no network, no key (the default without one)",
        factory=lambda _request: OfflineProvider(),
    ))
