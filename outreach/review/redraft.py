"""The bridge from the drafting library to the review queue: queue inputs from draft records, and
"regenerate with instructions".

A regeneration renders the same template from the same facts as the first draft and adds the rep's
instructions as a separate, clearly fenced block after the facts, so a provider treats them as guidance and
the validators still hold the new text to the facts (numbers, catalog names, prices, links). The offline
drafter is deterministic and cannot follow instructions; the new version says so instead of pretending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from outreach.drafting.config import DraftingConfig, load_drafting_config
from outreach.drafting.drafts import DraftingContext, DraftRecord
from outreach.drafting.facts import SenderFacts
from outreach.drafting.providers import Provider, get_provider
from outreach.drafting.providers.base import ProviderFailure
from outreach.drafting.registry import load_templates
from outreach.drafting.templates import render, select_template
from outreach.engine.data import Dataset
from outreach.errors import OutreachError
from outreach.review.queue import DraftInput, RegenerationRequest
from outreach.settings import Settings

INSTRUCTIONS_OPEN = "<reviewer_instructions>"
INSTRUCTIONS_CLOSE = "</reviewer_instructions>"


def draft_input(record: DraftRecord) -> DraftInput:
    """What the queue stores from one draft record (a record without a draft becomes a failed input)."""
    draft = record.draft
    return DraftInput(
        subject=draft.subject if draft else "",
        body=draft.body if draft else "",
        call_to_action=draft.call_to_action if draft else "",
        friction_ids=list(draft.friction_ids if draft else record.friction_ids),
        offer_id=draft.offer_id if draft else (record.offer.id if record.offer else None),
        template_name=record.template,
        template_version=record.template_version,
        template_hash=record.template_sha256,
        provider=record.provider,
        model=record.model,
        quality=record.status if draft else "failed",
        issues=record.review_notes(),  # the final draft's issues, the rejected attempts' and steering tickets
        prompt_tokens=record.usage.prompt_tokens,
        completion_tokens=record.usage.completion_tokens,
        cost_usd=record.usage.cost_usd,
        fallback=record.fallback,
    )


def inputs_by_account(records: Sequence[DraftRecord]) -> dict[str, DraftInput]:
    """Draft records keyed by account id, ready for :func:`outreach.review.queue.fill_from_decisions`."""
    return {record.account_id: draft_input(record) for record in records}


class Redrafter:
    """A :data:`outreach.review.queue.Regenerator` that re-drafts through a drafting provider. ``senders``
    (e.g. :func:`outreach.review.users.sender_source`) says who signs, read at each regeneration so the new
    version is signed like the first one: by the account's owner."""

    def __init__(self, context: DraftingContext, provider: Provider,
                 senders: Callable[[], Mapping[str, SenderFacts]] | None = None) -> None:
        self.context = context
        self.provider = provider
        self.senders = senders

    @classmethod
    def for_dataset(
        cls,
        dataset: Dataset,
        settings: Settings,
        *,
        provider: Provider | None = None,
        config: DraftingConfig | None = None,
        senders: Callable[[], Mapping[str, SenderFacts]] | None = None,
    ) -> Redrafter:
        config = config or load_drafting_config(dataset.root / "drafting.yaml")
        templates = load_templates(settings.prompts_dir)
        context = DraftingContext.from_dataset(dataset, templates, config)
        return cls(context, provider or get_provider(settings.provider, settings, config), senders)

    @property
    def follows_instructions(self) -> bool:
        """The offline drafter renders the template's text; it cannot act on a rep's instructions."""
        return self.provider.name != "offline"

    def __call__(self, request: RegenerationRequest) -> DraftInput:
        decision = request.decision
        if decision.offer is None:
            raise OutreachError(f"draft {request.draft_id} has no offer to write about; it cannot be regenerated")
        if self.senders is not None:
            self.context.senders = dict(self.senders())
        facts = self.context.facts(decision)
        template = select_template(self.context.templates, decision.offer.motion)
        prompt = render(template, facts)
        if request.instructions:
            guidance = (
                f"{INSTRUCTIONS_OPEN}\nThe sales rep reviewing this email asks for these changes. Revise the "
                "current text below, keeping the rep's wording except where the changes say otherwise, and follow "
                "them where they do not conflict with the rules or the facts.\n"
                f"Current subject: {request.subject}\nCurrent body:\n{request.body}\n"
                f"Requested changes: {request.instructions}\n{INSTRUCTIONS_CLOSE}"
            )
            prompt = prompt.model_copy(update={"user": f"{prompt.user}\n\n{guidance}"})
        try:
            result = asyncio.run(self.provider.generate(prompt, facts))
        except ProviderFailure as failure:
            raise OutreachError(f"regeneration failed: {failure.message}", hint=failure.hint) from None
        issues = [f"[{i.rule}] {i.message}" for i in self.context.validate(result.draft, facts)]
        if request.instructions and self.provider.name == "offline":
            issues.append("the offline drafter cannot follow instructions; this is the template's text again "
                          "(configure OPENAI_API_KEY for instructed rewrites)")
        draft = result.draft
        return DraftInput(
            subject=draft.subject,
            body=draft.body,
            call_to_action=draft.call_to_action,
            friction_ids=list(draft.friction_ids),
            offer_id=draft.offer_id,
            template_name=prompt.template,
            template_version=prompt.version,
            template_hash=prompt.sha256,
            provider=self.provider.name,
            model=result.model,
            quality="flagged" if issues else "ok",
            issues=issues,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            cost_usd=result.usage.cost_usd,
        )

