"""A scripted provider for tests and demos of the drafting logic: no network, no model.

``enqueue`` a :class:`~outreach.drafting.drafts.Draft` (returned as the model's answer) or an exception (raised as
the provider failing); each ``generate`` call takes the next item and records the prompt and repair request.
"""

from __future__ import annotations

from collections import deque

from outreach.drafting.facts import DraftFacts
from outreach.drafting.ledger import TokenUsage
from outreach.drafting.providers.base import Draft, ProviderResult, RepairRequest
from outreach.drafting.templates import RenderedPrompt


class FakeLLM:
    name = "fake"

    def __init__(self, model: str = "fake-model", usage: TokenUsage | None = None) -> None:
        self.model = model
        self.usage = usage or TokenUsage(requests=1, prompt_tokens=100, completion_tokens=50, cost_usd=0.0001)
        self.queue: deque[Draft | BaseException] = deque()
        self.calls: list[tuple[RenderedPrompt, RepairRequest | None]] = []

    def enqueue(self, *items: Draft | BaseException) -> FakeLLM:
        self.queue.extend(items)
        return self

    async def generate(
        self, prompt: RenderedPrompt, facts: DraftFacts, *, repair: RepairRequest | None = None
    ) -> ProviderResult:
        self.calls.append((prompt, repair))
        if not self.queue:
            raise AssertionError("FakeLLM: nothing enqueued for this call")
        item = self.queue.popleft()
        if isinstance(item, BaseException):
            raise item
        return ProviderResult(draft=item, usage=self.usage, model=self.model)
