"""What every draft provider implements and returns: the :class:`Provider` protocol, the :class:`Draft` it
writes (also the structured-output schema), :class:`ProviderResult`, the :class:`RepairRequest` it may be
handed and the :class:`ProviderFailure` it raises when one draft cannot be written."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from outreach.drafting.facts import DraftFacts
from outreach.drafting.ledger import TokenUsage
from outreach.drafting.templates import RenderedPrompt
from outreach.drafting.validation import Issue
from outreach.errors import OutreachError


class Draft(BaseModel):
    """The email itself; also the structured-output schema the LLM must fill (every field required)."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(description="Subject line, at most 80 characters, naming the friction.")
    body: str = Field(description="Plain-text body from greeting to sign-off, at most 150 words.")
    call_to_action: str = Field(description="The one sentence in the body that asks for the next step.")
    friction_ids: list[str] = Field(description="Ids of the frictions from <facts> the email uses.")
    offer_id: str = Field(description="The offer id from <facts>.")


class RepairRequest(BaseModel):
    """A rejected draft and the reasons, sent back to the model once."""

    previous: Draft
    issues: list[Issue]

    def instructions(self) -> str:
        reasons = "\n".join(f"- [{i.rule}] {i.message}" for i in self.issues)
        return (
            "Your draft broke these rules:\n"
            f"{reasons}\n"
            "Rewrite it so that it follows every rule. Use only numbers, names, prices and links from <facts>."
        )


class ProviderResult(BaseModel):
    draft: Draft
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str
    cached: bool = False


class ProviderFailure(OutreachError):
    """One draft could not be produced after the provider's retries (still 429/5xx, invalid output, refusal).
    The run goes on: the offline drafter takes over for this account and the record says why."""

    def __init__(self, message: str, *, usage: TokenUsage | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.usage = usage or TokenUsage()


class Provider(Protocol):
    name: str
    model: str

    async def generate(
        self, prompt: RenderedPrompt, facts: DraftFacts, *, repair: RepairRequest | None = None
    ) -> ProviderResult:
        """Write one draft. Raise ProviderFailure when this draft cannot be written, ProviderError when no
        draft can (bad key, insufficient quota)."""
        ...
