"""`outreach draft`, `outreach prompts list|preview` and the drafting part of `outreach demo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach.cli.main import DEMO_DATA, app
from tests.helpers import make_data_dir

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path / "data")


def test_draft_writes_jsonl_and_prints_a_summary(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "drafts.jsonl"
    result = runner.invoke(app, ["draft", "--data", str(data), "--as-of", "2026-11-20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 drafts: 3 ok, 0 flagged, 0 failed" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["account_id"] for line in lines] == ["a1", "a2", "a3"]
    assert lines[0]["provider"] == "offline" and lines[0]["template"] == "upsell"
    assert lines[0]["draft"]["offer_id"] == "business"


def test_draft_defaults_to_outreach_home_and_honours_limit(data: Path, isolated_home: Path) -> None:
    result = runner.invoke(app, ["draft", "--data", str(data), "--as-of", "2026-11-20", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert len((isolated_home / "drafts.jsonl").read_text().splitlines()) == 1


def test_openai_without_a_key_is_one_line_and_a_hint(data: Path) -> None:
    result = runner.invoke(app, ["draft", "--data", str(data), "--as-of", "2026-11-20", "--provider", "openai"])
    assert result.exit_code == 2
    assert "Error: the openai provider needs an API key" in result.output
    assert "Hint: set OPENAI_API_KEY" in result.output


def test_bad_date_and_missing_data_are_user_errors(data: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["draft", "--data", str(data), "--as-of", "20-11-2026"]).exit_code == 2
    missing = runner.invoke(app, ["draft", "--data", str(tmp_path / "nope"), "--as-of", "2026-11-20"])
    assert missing.exit_code == 2 and "not a directory" in missing.output


def test_prompts_list(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prompts", "list"])
    assert result.exit_code == 0, result.output
    for name in ("upsell", "cross_sell", "bundle", "followup"):
        assert name in result.output
    variables = runner.invoke(app, ["prompts", "list", "--variables"])
    assert variables.exit_code == 0 and "customer_data" in variables.output


def test_prompts_preview_with_draft(data: Path) -> None:
    result = runner.invoke(
        app, ["prompts", "preview", "upsell", "--account", "a1", "--data", str(data), "--as-of", "2026-11-20", "--draft"]
    )
    assert result.exit_code == 0, result.output
    assert "House style" in result.output and "<facts>" in result.output
    assert "Subject: Room beyond 10 reports" in result.output


def test_prompts_preview_unknown_template_or_account(data: Path) -> None:
    args = ["--data", str(data), "--as-of", "2026-11-20"]
    unknown = runner.invoke(app, ["prompts", "preview", "nope", "--account", "a1", *args])
    assert unknown.exit_code == 2 and "no prompt template named 'nope'" in unknown.output
    missing = runner.invoke(app, ["prompts", "preview", "upsell", "--account", "zz", *args])
    assert missing.exit_code == 2 and "no account 'zz'" in missing.output


def test_prompt_template_error_names_file_and_line(data: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "broken.md.j2").write_text(
        "---\nname: broken\nversion: '1'\nmotion: any\ndescription: d\n---\n"
        "{% block system %}s{% endblock %}\n{% block user %}{{ offer.price }}{% endblock %}\n"
    )
    result = runner.invoke(app, ["prompts", "list", "--prompts", str(prompts)])
    assert result.exit_code == 2
    assert "broken.md.j2:8" in result.output and "price" in result.output


@pytest.mark.skipif(not (DEMO_DATA / "catalog.yaml").exists(), reason="outreach/defaults/demo not generated yet")
def test_demo_drafts_every_ready_account(isolated_home: Path) -> None:
    result = runner.invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Drafts (offline provider)" in result.output
    assert "Subject:" in result.output
    records = [json.loads(line) for line in (isolated_home / "demo-drafts.jsonl").read_text().splitlines()]
    assert records and all(r["status"] in ("ok", "flagged") for r in records)


def test_draft_fills_the_review_queue_and_merges_on_rerun(data: Path, isolated_home: Path) -> None:
    args = ["draft", "--data", str(data), "--as-of", "2026-11-20"]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "Review queue" in first.stdout and " new, 0 merged" in first.stdout
    listed = runner.invoke(app, ["queue", "list", "--json"])
    rows = json.loads(listed.stdout)["rows"]
    assert rows and {row["status"] for row in rows} == {"pending_review"}
    second = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert "0 new" in second.stdout  # one open draft per account and motion: re-runs merge
    assert len(json.loads(runner.invoke(app, ["queue", "list", "--json"]).stdout)["rows"]) == len(rows)


def test_draft_no_queue_writes_only_jsonl(data: Path, isolated_home: Path) -> None:
    result = runner.invoke(app, ["draft", "--data", str(data), "--as-of", "2026-11-20", "--no-queue"])
    assert result.exit_code == 0 and "Review queue" not in result.stdout
    assert not (isolated_home / "outreach.db").exists()
