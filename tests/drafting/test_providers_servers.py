"""Other servers and vendors, replayed from hand-authored cassettes in their documented wire shapes.

llama-cpp-python's server (no json_schema: negotiated down to json_object with the schema in the prompt),
Ollama's OpenAI endpoint and vLLM (json_schema), a server that only does tool calling, and Anthropic's
Messages API through ``anthropic:MODEL`` (LangChain's ``init_chat_model``, a forced tool call, a 429 honoured).
Cassettes: tests/cassettes/test_providers_servers/, ``record_mode="none"``, each interaction replayed once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr

from outreach.drafting.config import DraftingConfig, OpenAIOptions, load_drafting_config
from outreach.drafting.drafts import Workspace, write_draft
from outreach.drafting.providers import get_provider
from outreach.drafting.providers.cache import ResponseCache
from outreach.drafting.providers.chat import ChatProvider
from outreach.drafting.providers.openai import OpenAIProvider
from outreach.drafting.providers.ratelimit import RateLimiter
from outreach.drafting.templates import render, select_template
from outreach.errors import ProviderError
from outreach.settings import Settings

CASSETTES = Path(__file__).parents[1] / "cassettes" / "test_providers_servers"

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path"],
    filter_headers=["authorization", "x-api-key", "cookie", "set-cookie"],
)


@contextmanager
def cassette(name: str, bodies: list[dict[str, Any]] | None = None) -> Iterator[Any]:
    """Replay ``name`` strictly (each interaction once, in order); ``bodies`` collects the JSON requests sent."""
    with recorder.use_cassette(name, allow_playback_repeats=False) as played:
        if bodies is not None:
            play = played.play_response

            def spy(request: Any) -> Any:
                bodies.append(json.loads(request.body))
                return play(request)

            played.play_response = spy
        yield played


def config() -> DraftingConfig:
    base = load_drafting_config()
    return DraftingConfig(validation=base.validation, prices=base.prices,
                          openai=OpenAIOptions(max_attempts=3, repair_attempts=1))


async def _no_sleep(_seconds: float) -> None:
    return None


def openai_provider(base_url: str, *, structured: str = "auto", cache: ResponseCache | None = None,
                    model: str = "local-model") -> OpenAIProvider:
    settings = Settings(OPENAI_API_KEY="sk-test-local", OPENAI_BASE_URL=base_url,
                        structured_output=structured)
    return OpenAIProvider(settings, config(), model=model, cache=cache,
                          limiter=RateLimiter(60_000, 100_000_000, sleep=_no_sleep), sleep=_no_sleep)


def run(workspace: Workspace, provider: ChatProvider):  # type: ignore[no-untyped-def]
    decision = workspace.decision("a1")
    return asyncio.run(write_draft(decision, workspace.context, provider))


def test_llama_cpp_python_server_negotiates_json_object(workspace: Workspace, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    provider = openai_provider("http://127.0.0.1:8000/v1", cache=cache)
    bodies: list[dict[str, Any]] = []
    with cassette("test_llama_cpp_python_server_negotiates_json_object.yaml", bodies) as played:
        record = run(workspace, provider)
        assert played.all_played and played.play_count == 2
    assert record.status == "ok" and record.provider == "openai" and not record.fallback
    assert record.usage.requests == 1 and record.usage.prompt_tokens == 1203  # the refusal is not a retry
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[1]["response_format"] == {"type": "json_object"}
    assert '"call_to_action"' in bodies[1]["messages"][0]["content"]  # the schema went into the system prompt
    assert provider.method == "json_object" and provider.switches[0].startswith("json_schema → json_object")
    # Remembered for this endpoint and model: the next run starts with json_object (and hits the cache).
    again = openai_provider("http://127.0.0.1:8000/v1", cache=cache)
    assert again.method == "json_object"
    assert run(workspace, again).cached


def test_a_fixed_method_the_server_refuses_stops_the_run_with_a_hint(workspace: Workspace) -> None:
    provider = openai_provider("http://127.0.0.1:8000/v1", structured="json_schema")
    with cassette("test_llama_cpp_python_server_negotiates_json_object.yaml") as played:
        with pytest.raises(ProviderError, match="does not support structured output method 'json_schema'") as error:
            run(workspace, provider)
        assert played.play_count == 1
    assert error.value.hint and "OUTREACH_STRUCTURED_OUTPUT=auto" in error.value.hint


def test_ollama_openai_endpoint(workspace: Workspace) -> None:
    bodies: list[dict[str, Any]] = []
    with cassette("test_ollama_openai_endpoint.yaml", bodies) as played:
        record = run(workspace, openai_provider("http://localhost:11434/v1", model="llama3.1:8b"))
        assert played.all_played
    assert record.status == "ok" and record.model == "llama3.1:8b"
    assert bodies[0]["response_format"]["type"] == "json_schema" and bodies[0]["model"] == "llama3.1:8b"
    assert record.usage.prompt_tokens == 1198 and record.usage.cost_usd == 0  # a local model has no price


def test_vllm_server(workspace: Workspace) -> None:
    with cassette("test_vllm_server.yaml") as played:
        record = run(workspace, openai_provider("http://localhost:8000/v1",
                                                model="meta-llama/Llama-3.1-8B-Instruct"))
        assert played.all_played
    assert record.status == "ok" and record.draft is not None and record.draft.offer_id == "business"
    assert record.usage.completion_tokens == 171


def test_tools_only_server(workspace: Workspace) -> None:
    bodies: list[dict[str, Any]] = []
    provider = openai_provider("http://127.0.0.1:8080/v1")
    with cassette("test_tools_only_server.yaml", bodies) as played:
        record = run(workspace, provider)
        assert played.all_played and played.play_count == 3
    assert record.status == "ok" and provider.method == "tools"
    assert [b.get("response_format", {}).get("type") for b in bodies[:2]] == ["json_schema", "json_object"]
    assert bodies[2]["tools"][0]["function"]["name"] == "Draft" and "response_format" not in bodies[2]
    assert bodies[2]["tool_choice"]["function"]["name"] == "Draft"


def test_anthropic_messages_through_init_chat_model(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    provider = get_provider("anthropic:claude-3-5-haiku-20241022", Settings(), config(), use_cache=False)
    assert isinstance(provider, ChatProvider) and provider.method == "tools"
    provider.sleep = _no_sleep
    provider.limiter = RateLimiter(60_000, 100_000_000, sleep=_no_sleep)
    bodies: list[dict[str, Any]] = []
    with cassette("test_anthropic_messages.yaml", bodies) as played:
        record = run(workspace, provider)
        assert played.all_played and played.play_count == 2
    assert record.status == "ok" and record.provider == "anthropic" and record.model == "claude-3-5-haiku-20241022"
    # LangChain counts cache reads in input_tokens (1,420 fresh + 1,024 read from Anthropic's prompt cache).
    assert record.usage.requests == 2 and record.usage.prompt_tokens == 2444 and record.usage.cached_tokens == 1024
    request = bodies[-1]
    assert request["tool_choice"] == {"type": "tool", "name": "Draft"} and request["tools"][0]["name"] == "Draft"
    assert request["system"] and request["messages"][0]["role"] == "user"  # system prompt sent apart, as documented


def test_the_cache_key_names_provider_endpoint_model_method_and_template(workspace: Workspace) -> None:
    facts = workspace.context.facts(workspace.decision("a1"))
    prompt = render(select_template(workspace.context.templates, "upsell"), facts)
    base = openai_provider("http://127.0.0.1:8000/v1")
    keys = {
        base.cache_key(prompt),
        openai_provider("http://127.0.0.1:9000/v1").cache_key(prompt),
        openai_provider("http://127.0.0.1:8000/v1", model="other").cache_key(prompt),
        openai_provider("http://127.0.0.1:8000/v1", structured="tools").cache_key(prompt),
        base.cache_key(prompt.model_copy(update={"sha256": "0" * 64})),
    }
    assert len(keys) == 5


def test_cassettes_say_they_are_hand_written_and_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert text.startswith("# Hand-authored, follows the documented shape"), path.name
        assert "sk-" not in text and "x-api-key" not in text.lower()
