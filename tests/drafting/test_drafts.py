"""Drafting logic with a scripted model: repair, fallback, stop on fatal errors, concurrency, ledger, cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from outreach.drafting.drafts import (
    Workspace,
    draft_all,
    open_workspace,
    read_jsonl,
    run_drafts,
    write_draft,
    write_jsonl,
)
from outreach.drafting.facts import DraftFacts
from outreach.drafting.ledger import TokenUsage, estimate_cost, price_for, total
from outreach.drafting.providers import default_provider_name, get_provider
from outreach.drafting.providers.base import Draft, ProviderFailure, ProviderResult, RepairRequest
from outreach.drafting.providers.fake import FakeLLM
from outreach.drafting.providers.offline import OfflineProvider, draft_offline
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.style import asks_in
from outreach.drafting.templates import RenderedPrompt
from outreach.errors import ConfigError, OutreachError, ProviderError
from outreach.settings import Settings
from tests.helpers import AS_OF, make_data_dir


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return open_workspace(make_data_dir(tmp_path / "data"), AS_OF)


def good(workspace: Workspace, account: str) -> Draft:
    return draft_offline(workspace.context.facts(workspace.decision(account)))


def bad(workspace: Workspace, account: str) -> Draft:
    draft = good(workspace, account)
    return draft.model_copy(update={"body": draft.body + "\nAct now: 37 teams switched this week."})


def test_only_ready_accounts_are_drafted_in_order(workspace: Workspace) -> None:
    records, summary = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    assert [r.account_id for r in records] == ["a1", "a2", "a3"]
    assert [r.motion for r in records] == ["upsell", "cross_sell", "bundle"]
    assert (summary.total, summary.drafted, summary.flagged, summary.failed) == (3, 3, 0, 0)
    assert all(r.status == "ok" and r.template_sha256 for r in records)


def test_offline_drafts_follow_house_style(workspace: Workspace) -> None:
    records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    for record in records:
        assert record.draft is not None
        body = record.draft.body
        assert len(body.split()) <= 150
        assert body.startswith("Hi ") and body.rstrip().endswith("Riley Chen\nNorthwind Metrics")
        assert record.draft.call_to_action in body
        assert "unlock" not in body.lower()
    upsell = records[0].draft
    assert upsell is not None
    assert "running into the Team plan's cap of 10 reports" in upsell.body
    assert "4 times" not in upsell.body  # figures the customer knows (the cap), not what we counted
    assert "The Business plan has no cap on reports" in upsell.body and "$299 a month" in upsell.body
    assert len(asks_in(upsell.body)) == 1


def test_drafting_is_deterministic(workspace: Workspace) -> None:
    first, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    second, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    assert first[0].created_at.isoformat() == "2026-11-20T00:00:00+00:00"


def test_good_llm_draft_is_ok(workspace: Workspace) -> None:
    fake = FakeLLM().enqueue(good(workspace, "a1"))
    record = asyncio.run(write_draft(workspace.decision("a1"), workspace.context, fake))
    assert record.status == "ok" and record.provider == "fake" and record.usage.prompt_tokens == 100
    assert fake.calls[0][1] is None


def test_invalid_draft_gets_one_repair_with_the_reasons(workspace: Workspace) -> None:
    fake = FakeLLM().enqueue(bad(workspace, "a1"), good(workspace, "a1"))
    record = asyncio.run(write_draft(workspace.decision("a1"), workspace.context, fake))
    assert record.status == "ok" and not record.fallback
    repair = fake.calls[1][1]
    assert isinstance(repair, RepairRequest)
    assert {i.rule for i in repair.issues} == {"number", "banned_phrase", "deadline"}  # "act now" is both
    assert "'37' does not appear in the facts" in repair.instructions()
    assert record.usage.requests == 2


def test_still_invalid_after_repair_falls_back_offline_with_a_flag(workspace: Workspace) -> None:
    fake = FakeLLM().enqueue(bad(workspace, "a1"), bad(workspace, "a1"))
    record = asyncio.run(write_draft(workspace.decision("a1"), workspace.context, fake))
    assert record.status == "flagged" and record.fallback and record.provider == "offline"
    assert record.draft == good(workspace, "a1") and record.issues == []
    assert len(record.attempts) == 2 and all(a.issues for a in record.attempts)
    assert len(fake.calls) == 2  # exactly one repair attempt


def test_provider_failure_falls_back_offline(workspace: Workspace) -> None:
    fake = FakeLLM().enqueue(ProviderFailure("no usable draft after 4 attempts: refused"))
    record = asyncio.run(write_draft(workspace.decision("a2"), workspace.context, fake))
    assert record.fallback and record.status == "flagged"
    assert record.attempts[0].error == "no usable draft after 4 attempts: refused"


def test_fatal_provider_error_stops_the_run_and_is_reported(workspace: Workspace) -> None:
    fake = FakeLLM().enqueue(ProviderError("quota exhausted"))
    records, summary = asyncio.run(draft_all(workspace.decisions, workspace.context, fake, concurrency=1))
    assert [r.status for r in records] == ["failed", "failed", "failed"]
    assert records[0].error == "quota exhausted"
    assert records[1].error == "not attempted: quota exhausted"
    assert summary.error == "quota exhausted" and summary.failed == 3
    assert len(fake.calls) == 1


def test_concurrency_is_bounded_and_progress_reported(workspace: Workspace) -> None:
    in_flight = 0
    peak = 0

    class Slow:
        name = "slow"
        model = "slow-model"

        async def generate(
            self, prompt: RenderedPrompt, facts: DraftFacts, *, repair: RepairRequest | None = None
        ) -> ProviderResult:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return ProviderResult(draft=draft_offline(facts), model=self.model)

    seen: list[str] = []
    _, summary = asyncio.run(
        draft_all(workspace.decisions, workspace.context, Slow(), concurrency=2, progress=lambda r: seen.append(r.account_id))
    )
    assert peak == 2 and sorted(seen) == ["a1", "a2", "a3"] and summary.drafted == 3
    limited, _ = asyncio.run(draft_all(workspace.decisions, workspace.context, Slow(), limit=1))
    assert [r.account_id for r in limited] == ["a1"]


def test_jsonl_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    path = write_jsonl(records, tmp_path / "out" / "drafts.jsonl")
    assert read_jsonl(path) == records


def test_accounts_without_an_offer_cannot_be_drafted(workspace: Workspace) -> None:
    with pytest.raises(OutreachError, match="no offer"):
        workspace.context.facts(workspace.decision("a5"))


def test_default_provider_is_offline_without_a_key() -> None:
    settings = Settings()
    assert default_provider_name(settings) == "offline"
    assert get_provider(None, settings).name == "offline"
    assert default_provider_name(Settings(OPENAI_API_KEY="sk-x")) == "openai"
    with pytest.raises(ConfigError, match="API key"):
        get_provider("openai", settings)
    with pytest.raises(ConfigError, match="unknown provider"):
        get_provider("claude", settings)
    with pytest.raises(ConfigError, match="LangChain cannot build a 'claude' chat model"):
        get_provider("claude:opus", settings)
    with pytest.raises(ConfigError, match="anthropic provider needs an API key") as missing:
        get_provider("anthropic:claude-3-5-haiku-latest", settings)
    assert missing.value.hint == "set ANTHROPIC_API_KEY"


def test_ledger_prices_and_totals() -> None:
    from outreach.drafting.config import load_drafting_config

    prices = load_drafting_config().prices
    price = price_for("gpt-4o-mini-2024-07-18", prices)
    assert price is not None and price.input == 0.15
    assert estimate_cost(1_000_000, 0, 0, price) == pytest.approx(0.15)
    assert estimate_cost(1_000_000, 0, 1_000_000, price) == pytest.approx(0.075)
    assert estimate_cost(10, 10, 0, price_for("unknown-model", prices)) == 0.0
    summed = total([TokenUsage(requests=1, prompt_tokens=5, cost_usd=0.1), TokenUsage(requests=2, completion_tokens=3)])
    assert (summed.requests, summed.total_tokens, summed.cost_usd) == (3, 8, 0.1)


def test_rate_limiter_paces_requests_and_tokens() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(60, 1_000_000, clock=lambda: now[0], sleep=sleep)  # one request per second

    async def five() -> None:
        for _ in range(5):
            await limiter.acquire(10)

    asyncio.run(five())
    assert now[0] == pytest.approx(4.0)  # the first goes at once, then one per second

    tokens = RateLimiter(6000, 600, clock=lambda: now[0], sleep=sleep)  # 10 tokens per second
    start = now[0]

    async def heavy() -> None:
        await tokens.acquire(10)
        await tokens.acquire(10)

    asyncio.run(heavy())
    assert now[0] - start == pytest.approx(1.0)

    paused = RateLimiter(6000, 1_000_000, clock=lambda: now[0], sleep=sleep)
    paused.pause(2.5)
    start = now[0]
    asyncio.run(paused.acquire(1))
    assert now[0] - start == pytest.approx(2.5)


def test_run_drafts_works_inside_a_running_event_loop(workspace: Workspace) -> None:
    async def inside() -> int:
        records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
        return len(records)

    assert asyncio.run(inside()) == 3


def test_the_account_owner_signs_and_the_catalog_sender_is_the_fallback(tmp_path: Path) -> None:
    from outreach.drafting.facts import SenderFacts
    from outreach.drafting.style import signed_by

    root = make_data_dir(tmp_path / "data")
    accounts = root / "accounts.csv"
    lines = accounts.read_text().splitlines()
    lines[0] += ",owner_email"
    lines[1:] = [line + (",priya@northwind.example" if line.startswith("a1,") else ",") for line in lines[1:]]
    accounts.write_text("\n".join(lines) + "\n")
    owner = SenderFacts(name="Priya Raman", title="Account Executive", email="priya@northwind.example", owner=True)
    workspace = open_workspace(root, AS_OF, senders={"priya@northwind.example": owner})
    a1 = workspace.context.facts(workspace.decision("a1"))
    a2 = workspace.context.facts(workspace.decision("a2"))
    assert a1.sender == owner and a2.sender.name == "Riley Chen" and not a2.sender.owner
    draft = draft_offline(a1)
    assert draft.body.endswith("Priya Raman\nAccount Executive\nNorthwind Metrics")
    assert workspace.context.validate(draft, a1) == []
    by_catalog = draft.model_copy(update={"body": draft.body.replace("Priya Raman\nAccount Executive", "Riley Chen")})
    assert signed_by(by_catalog.body, a1)[0] is False
    assert {i.rule for i in workspace.context.validate(by_catalog, a1)} == {"signature"}
    records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    assert records[0].sender == "priya@northwind.example"


def test_copy_rules_catch_watching_two_asks_and_an_untied_offer(workspace: Workspace) -> None:
    facts = workspace.context.facts(workspace.decision("a1"))
    draft = draft_offline(facts)
    cases = {
        "surveillance": "We noticed your team clicked the reports page 14 times last week.",
        "asks": "Would a call help? You can also see the details at https://northwind.example/upgrade.",
    }
    for rule, sentence in cases.items():
        body = draft.body.replace("\n\nBest,", f" {sentence}\n\nBest,")
        assert rule in {i.rule for i in workspace.context.validate(draft.model_copy(update={"body": body}), facts)}
    untied = draft.body.replace("has no cap on reports", "includes SSO")
    rules = {i.rule for i in workspace.context.validate(draft.model_copy(update={"body": untied}), facts)}
    assert "offer_fit" in rules


def test_providers_register_themselves_and_plugins_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.drafting.providers import provider_names
    from outreach.drafting.providers.fake import FakeLLM
    from outreach.drafting.providers.registry import ProviderRegistry, ProviderSpec, provider_registry

    assert {"offline", "openai", "anthropic"} <= set(provider_names())
    registry = provider_registry()
    plugin = FakeLLM(model="house-model")
    registry.register(ProviderSpec(name="house", description="a plugin", factory=lambda _request: plugin))
    try:
        assert get_provider("house", Settings()) is plugin
        assert "house" in provider_names()
    finally:
        registry._specs.pop("house")
    assert isinstance(registry, ProviderRegistry)
