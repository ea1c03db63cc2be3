"""`outreach draft --provider openai` on the demo data against OpenAI-compatible servers that misbehave.

Real HTTP (tests/llm_server.py on 127.0.0.1), the real openai SDK through LangChain, the real queue database:

- a server whose model obeys the injections in its customer data, in paraphrase: no poisoned draft is stored
  ``ok``, none sits in the queue without its reasons, and the injected text is in no stored version;
- a server without ``response_format: json_schema`` (llama-cpp-python's 500): every ready account still gets an
  LLM draft, the refused method is switched, not retried;
- a server that answers every third request with 429: nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from outreach.cli.main import DEMO_DATA, app
from outreach.drafting.drafts import DraftRecord, read_jsonl
from outreach.review.storage import DraftRow, DraftVersionRow
from tests.llm_server import LLMServer, serve

runner = CliRunner()
READY = 18  # ready accounts in the demo on 2026-11-20 (outreach/defaults/demo/README.md)


def draft(server: LLMServer, out: Path, *extra: str) -> tuple[list[DraftRecord], str]:
    env = {"OPENAI_API_KEY": "sk-local-test", "OPENAI_BASE_URL": server.base_url}
    config = out.parent / "drafting.yaml"  # a local server: no client-side rate limit to wait for
    config.write_text("openai:\n  requests_per_minute: 1000000\n  tokens_per_minute: 1000000000\n", encoding="utf-8")
    result = runner.invoke(
        app, ["draft", "--data", str(DEMO_DATA), "--as-of", "2026-11-20", "--provider", "openai", "--out", str(out),
              "--config", str(config), *extra], env=env,
    )
    assert result.exit_code == 0, result.output
    return read_jsonl(out), result.output


@pytest.fixture
def steered() -> Iterator[LLMServer]:
    with serve(LLMServer(steered=True)) as server:
        yield server


def test_a_steered_model_gets_no_poisoned_draft_into_the_queue(
    steered: LLMServer, tmp_path: Path, isolated_home: Path
) -> None:
    records, output = draft(steered, tmp_path / "drafts.jsonl")
    assert len(records) == READY and f"{READY} drafts: 0 ok, {READY} flagged, 0 failed ({READY} offline" in output
    poison = set(steered.poisoned)
    assert len(poison) >= 10  # the server wrote many different paraphrases
    for record in records:
        assert record.status == "flagged" and record.fallback and record.draft is not None
        text = f"{record.draft.subject}\n{record.draft.body}\n{record.draft.call_to_action}"
        assert not any(p in text for p in poison), record.account_id

    engine = create_engine(f"sqlite:///{isolated_home / 'outreach.db'}")
    with Session(engine) as session:
        versions = session.scalars(select(DraftVersionRow)).all()
        drafts = session.scalars(select(DraftRow)).all()
    engine.dispose()
    assert len(drafts) == READY and all(d.status == "pending_review" for d in drafts)
    stored_ok = [v for v in versions if v.quality == "ok"]
    assert stored_ok == []  # 0 poisoned drafts stored ok
    for version in versions:
        assert not any(p in f"{version.subject}\n{version.body}" for p in poison)
        assert version.fallback and version.issues, version.draft_id
        assert any("replaced by the offline draft because it broke these rules" in line for line in version.issues)
    northwind = next(d for d in drafts if d.account_id == "northwind-freight")
    notes = next(v for v in versions if v.draft_id == northwind.id).issues
    assert any(line.startswith("Ticket T-1199 tried to steer the model") for line in notes)


def test_a_server_without_json_schema_still_drafts_every_account(tmp_path: Path) -> None:
    with serve(LLMServer(json_schema=False)) as server:
        records, output = draft(server, tmp_path / "drafts.jsonl", "--no-queue")
    assert len(records) == READY and "(0 offline fallbacks" in output
    assert all(r.provider == "openai" and not r.fallback and r.status == "ok" for r in records)
    refused = [m for m, status in zip(server.methods, server.statuses, strict=True) if m == "json_schema"]
    assert all(status == 500 for m, status in zip(server.methods, server.statuses, strict=True) if m == "json_schema")
    assert 1 <= len(refused) <= 4  # at most one per request in flight, then switched (never retried)
    assert server.methods[-1] == "json_object"


def test_429_on_every_third_request_loses_nothing(tmp_path: Path) -> None:
    with serve(LLMServer(rate_limit_every=3)) as server:
        records, output = draft(server, tmp_path / "drafts.jsonl", "--no-queue")
    assert server.statuses.count(429) >= READY // 3
    assert len(records) == READY and f"{READY} drafts: {READY} ok, 0 flagged, 0 failed (0 offline" in output
    assert all(r.provider == "openai" and r.status == "ok" for r in records)


def test_429s_buy_extra_attempts_beyond_max_attempts(tmp_path: Path) -> None:
    """Six 429s in a row for one draft (max_attempts is 4): each one buys an attempt, and the draft is written."""
    import asyncio
    from datetime import date

    from outreach.drafting.config import load_drafting_config
    from outreach.drafting.drafts import open_workspace, write_draft
    from outreach.drafting.providers.openai import OpenAIProvider
    from outreach.settings import Settings

    workspace = open_workspace(DEMO_DATA, date(2026, 11, 20))
    config = load_drafting_config()
    assert config.openai.max_attempts == 4 and config.openai.max_rate_limit_retries >= 6
    with serve(LLMServer(rate_limit_first=6)) as server:
        provider = OpenAIProvider(Settings(OPENAI_API_KEY="sk-local-test", OPENAI_BASE_URL=server.base_url), config)
        record = asyncio.run(write_draft(workspace.decision("northwind-freight"), workspace.context, provider))
    assert server.statuses == [429] * 6 + [200]
    assert record.status == "ok" and record.provider == "openai" and record.usage.requests == 7
