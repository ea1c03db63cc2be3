"""The cost ledger: tokens and estimated cost per draft, summed per run.

LLM drafting is paid per token, and a re-run served from the response cache costs nothing, so every draft
records what it used (prompt, completion and cached prompt tokens) and what that cost at the configured
prices (``prices`` in drafting.yaml, USD per million tokens). Unknown models cost 0 and say so.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from outreach.drafting.config import ModelPrice


class TokenUsage(BaseModel):
    """Tokens one draft used across all its requests (retries, repairs), and the estimated cost."""

    model_config = ConfigDict(frozen=True)

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 9),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def price_for(model: str, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """Exact model name first, then the longest configured prefix (``gpt-4o-mini-2024-07-18`` → gpt-4o-mini)."""
    if model in prices:
        return prices[model]
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def estimate_cost(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int, price: ModelPrice | None
) -> float:
    """Cached prompt tokens are billed at the cached rate, the rest of the prompt at the input rate."""
    if price is None:
        return 0.0
    uncached = max(prompt_tokens - cached_tokens, 0)
    cost = (uncached * price.input + cached_tokens * price.cached_input + completion_tokens * price.output) / 1e6
    return round(cost, 9)


def usage_for(
    model: str,
    prices: dict[str, ModelPrice],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    requests: int = 1,
) -> TokenUsage:
    return TokenUsage(
        requests=requests,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        cost_usd=estimate_cost(prompt_tokens, completion_tokens, cached_tokens, price_for(model, prices)),
    )


def total(usages: Iterable[TokenUsage]) -> TokenUsage:
    result = TokenUsage()
    for usage in usages:
        result = result + usage
    return result
