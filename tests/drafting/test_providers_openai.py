"""The openai provider through the real openai SDK and LangChain, replayed from hand-authored cassettes.

Cassettes live in tests/cassettes/test_providers_openai/<test>.yaml, follow the documented Chat Completions
wire format and say so in their header. ``record_mode="none"``: a missing cassette or an unexpected extra
request fails the test instead of reaching the network. Retry cassettes use ``retry-after-ms`` so tests do
not sleep, and ``allow_playback_repeats`` is off so a 429-then-200 sequence must replay in order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from outreach.drafting.config import DraftingConfig, OpenAIOptions, load_drafting_config
from outreach.drafting.drafts import Workspace, open_workspace, write_draft
from outreach.drafting.providers.base import ProviderFailure
from outreach.drafting.providers.cache import ResponseCache
from outreach.drafting.providers.openai import OpenAIProvider, retry_after_seconds
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.templates import render, select_template
from outreach.errors import ProviderError
from outreach.settings import Settings
from tests.helpers import AS_OF, make_data_dir

CASSETTES = Path(__file__).parents[1] / "cassettes" / "test_providers_openai"

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path"],
    filter_headers=["authorization", "cookie", "set-cookie", "openai-organization", "openai-project"],
)


def cassette(name: str, **options: object):  # type: ignore[no-untyped-def]
    """Replay ``name`` strictly: each interaction once, in order (no playback repeats)."""
    return recorder.use_cassette(name, allow_playback_repeats=False, **options)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return open_workspace(make_data_dir(tmp_path / "data"), AS_OF)


def provider(
    max_attempts: int = 3, cache: ResponseCache | None = None, sleeps: list[float] | None = None
) -> OpenAIProvider:
    base = load_drafting_config()
    config = DraftingConfig(
        validation=base.validation,
        prices=base.prices,
        openai=OpenAIOptions(max_attempts=max_attempts, repair_attempts=1),
    )

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return OpenAIProvider(
        Settings(OPENAI_API_KEY="sk-test-not-a-real-key"),
        config,
        cache=cache,
        limiter=RateLimiter(60_000, 100_000_000, sleep=sleep),
        sleep=sleep,
    )


def a1(workspace: Workspace):  # type: ignore[no-untyped-def]
    decision = workspace.decision("a1")
    facts = workspace.context.facts(decision)
    prompt = render(select_template(workspace.context.templates, "upsell"), facts)
    return decision, facts, prompt


def test_structured_response(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    with cassette("test_structured_response.yaml") as played:
        result = asyncio.run(provider().generate(prompt, facts))
        assert played.play_count == 1
    assert result.draft.offer_id == "business"
    assert "the Team plan's cap of 10 reports" in result.draft.body
    assert result.usage.prompt_tokens == 812 and result.usage.completion_tokens == 164
    assert result.usage.cached_tokens == 768
    # gpt-4o-mini: 44 uncached * 0.15 + 768 cached * 0.075 + 164 * 0.60, per million tokens
    assert result.usage.cost_usd == pytest.approx((44 * 0.15 + 768 * 0.075 + 164 * 0.60) / 1e6)
    assert workspace.context.validate(result.draft, facts) == []


def test_record_is_ok_and_carries_provenance(workspace: Workspace) -> None:
    decision, _, _ = a1(workspace)
    with cassette("test_structured_response.yaml"):
        record = asyncio.run(write_draft(decision, workspace.context, provider()))
    assert record.status == "ok" and not record.fallback
    assert record.provider == "openai" and record.model == "gpt-4o-mini"
    assert record.template == "upsell" and record.template_sha256 and len(record.template_sha256) == 64
    assert record.usage.requests == 1


def test_rate_limit_retry_after_then_success(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    sleeps: list[float] = []
    with cassette("test_rate_limit_retry_after_then_success.yaml") as played:
        result = asyncio.run(provider(sleeps=sleeps).generate(prompt, facts))
        assert played.play_count == 2
        assert played.all_played
    assert result.draft.offer_id == "business"
    assert 0.02 in sleeps  # retry-after-ms: 20 wins over retry-after: 1
    assert result.usage.requests == 2


def test_server_error_then_success(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    sleeps: list[float] = []
    with cassette("test_server_error_then_success.yaml") as played:
        result = asyncio.run(provider(sleeps=sleeps).generate(prompt, facts))
        assert played.all_played
    assert result.draft.subject == "Room for more reports at Acme Analytics"
    assert 0.01 in sleeps


def test_malformed_json_then_success(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    with cassette("test_malformed_json_then_success.yaml") as played:
        result = asyncio.run(provider().generate(prompt, facts))
        assert played.all_played
    assert result.draft.offer_id == "business"


def test_invalid_draft_repaired(workspace: Workspace) -> None:
    decision, _, _ = a1(workspace)
    seen: list[bytes] = []

    def keep(request):  # type: ignore[no-untyped-def]
        seen.append(request.body)
        return request

    with cassette("test_invalid_draft_repaired.yaml", before_record_request=keep) as played:
        record = asyncio.run(write_draft(decision, workspace.context, provider()))
        assert played.all_played
    assert record.status == "ok" and not record.fallback
    assert len(record.attempts) == 2
    rules = {issue.rule for issue in record.attempts[0].issues}
    assert {"number", "banned_phrase"} <= rules
    repair_request = seen[-1].decode()
    assert "Your draft broke these rules" in repair_request and "'12' does not appear in the facts" in repair_request


def test_refusal_falls_back_offline(workspace: Workspace) -> None:
    decision, facts, prompt = a1(workspace)
    with cassette("test_refusal_falls_back_offline.yaml") as played:
        with pytest.raises(ProviderFailure, match="refused"):
            asyncio.run(provider(max_attempts=2).generate(prompt, facts))
        assert played.all_played
    with cassette("test_refusal_falls_back_offline.yaml"):
        record = asyncio.run(write_draft(decision, workspace.context, provider(max_attempts=2)))
    assert record.fallback and record.status == "flagged" and record.provider == "offline"
    assert record.draft is not None and record.issues == []
    assert record.attempts[0].error and "refused" in record.attempts[0].error
    assert record.usage.requests == 2


def test_finish_reason_length_then_success(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    with cassette("test_finish_reason_length_then_success.yaml") as played:
        result = asyncio.run(provider().generate(prompt, facts))
        assert played.all_played
    assert result.draft.offer_id == "business"
    assert result.usage.completion_tokens == 700 + 164  # the truncated answer is paid for too
    assert result.usage.requests == 2


def test_insufficient_quota_not_retried(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    sleeps: list[float] = []
    with cassette("test_insufficient_quota_not_retried.yaml") as played:
        with pytest.raises(ProviderError, match="insufficient_quota") as raised:
            asyncio.run(provider(sleeps=sleeps).generate(prompt, facts))
        assert played.play_count == 1
    assert raised.value.hint and "billing" in raised.value.hint
    assert sleeps == []


def test_cache_means_a_rerun_does_not_pay_twice(workspace: Workspace, tmp_path: Path) -> None:
    _, facts, prompt = a1(workspace)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with cassette("test_structured_response.yaml") as played:
        first = asyncio.run(provider(cache=cache).generate(prompt, facts))
        second = asyncio.run(provider(cache=cache).generate(prompt, facts))
        assert played.play_count == 1
    assert second.cached and second.draft == first.draft and second.usage.cost_usd == 0
    assert cache.hits == 1 and len(cache) == 1


def test_missing_cassette_fails_instead_of_reaching_the_network(workspace: Workspace) -> None:
    _, facts, prompt = a1(workspace)
    with cassette("does_not_exist.yaml"), pytest.raises(CannotOverwriteExistingCassetteException):
        asyncio.run(provider(max_attempts=1).generate(prompt, facts))


def test_cassettes_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert text.startswith("# Hand-authored, follows the documented shape")
        assert "sk-" not in text and "authorization" not in text.lower().replace("authorization/cookie", "")


def test_retry_after_parsing() -> None:
    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class Failure(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Response(headers)

    assert retry_after_seconds(Failure({"retry-after-ms": "250", "retry-after": "3"})) == 0.25
    assert retry_after_seconds(Failure({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(Failure({})) is None
    assert retry_after_seconds(ValueError()) is None
