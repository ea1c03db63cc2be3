"""`outreach init` and the workspace: commands read the workspace copy when present, the packaged defaults
otherwise, say which, and never write into the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach import bundled
from outreach.cli.main import app
from outreach.drafting.config import load_drafting_config
from outreach.drafting.registry import Registry
from outreach.engine.data import load_dataset
from outreach.engine.decisions import rules_for

runner = CliRunner()


def _packaged_snapshot() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(bundled.PROMPTS.rglob("*")) if p.is_file()}


def test_init_writes_an_editable_copy_and_keeps_existing_files(isolated_home: Path) -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    for name in ("prompts/registry.yaml", "prompts/history/upsell/v1.md.j2", "prompts/upsell.md.j2",
                 "sequences/upsell.yaml", "rules.yaml", "drafting.yaml", "eval/eval.yaml", "data/accounts.csv",
                 "data/catalog.yaml", ".gitignore"):
        assert (isolated_home / name).is_file(), name
    (isolated_home / "rules.yaml").write_text("triggers:\n  repeated_limit_hits: {min_hits: 7}\n")
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 1 and "kept existing prompts, sequences, rules.yaml" in again.stdout
    assert "min_hits: 7" in (isolated_home / "rules.yaml").read_text()
    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0 and "min_hits: 7" not in (isolated_home / "rules.yaml").read_text()


def test_init_into_another_directory(tmp_path: Path) -> None:
    target = tmp_path / "team"
    result = runner.invoke(app, ["init", str(target), "--no-example-data"])
    assert result.exit_code == 0 and (target / "prompts" / "registry.yaml").is_file()
    assert not (target / "data").exists() and f"export OUTREACH_HOME={target}" in result.stdout
    clash = tmp_path / "file"
    clash.write_text("x")
    refused = runner.invoke(app, ["init", str(clash)])
    assert refused.exit_code == 2 and "is not a directory" in refused.stderr


def test_commands_say_which_copy_they_read(isolated_home: Path) -> None:
    packaged = runner.invoke(app, ["prompts", "list"])
    assert packaged.exit_code == 0 and "Prompts: packaged defaults" in packaged.stderr
    assert "sequences: packaged defaults" in runner.invoke(app, ["-v", "sequences", "check"]).stderr
    runner.invoke(app, ["init"])
    workspace = runner.invoke(app, ["prompts", "list"])
    assert workspace.exit_code == 0 and f"Prompts: workspace copy {isolated_home / 'prompts'}" in workspace.stderr
    checked = runner.invoke(app, ["sequences", "check"])
    assert checked.exit_code == 0 and f"Sequences: workspace copy {isolated_home / 'sequences'}" in checked.stderr
    assert "Evaluation set: workspace copy" in runner.invoke(app, ["eval", "--prompt", "upsell"]).stderr


def test_data_defaults_to_the_workspace_then_the_setting(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, ["explain", "--as-of", "2026-11-20", "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 40
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(isolated_home / "nowhere"))
    configured = runner.invoke(app, ["explain", "--as-of", "2026-11-20"])
    assert configured.exit_code == 2 and "nowhere" in configured.stderr


def test_workspace_rules_and_drafting_policy_are_layered(isolated_home: Path) -> None:
    dataset = load_dataset(bundled.DEMO_DATA)
    assert rules_for(dataset).triggers.repeated_limit_hits.min_hits == 3
    runner.invoke(app, ["init", "--no-example-data"])
    assert rules_for(dataset).triggers.repeated_limit_hits.min_hits == 3  # a full copy changes nothing
    (isolated_home / "rules.yaml").write_text("triggers:\n  repeated_limit_hits: {min_hits: 7}\n")
    (isolated_home / "drafting.yaml").write_text("validation:\n  max_body_words: 90\n")
    assert rules_for(dataset).triggers.repeated_limit_hits.min_hits == 7
    assert load_drafting_config().validation.max_body_words == 90
    (isolated_home / "rules.yaml").write_text("triggers:\n  repeated_limit_hits: {min_hits: many}\n")
    bad = runner.invoke(app, ["explain", "--data", "demo"])
    assert bad.exit_code == 2 and "rules.yaml:2" in bad.stderr


def test_saving_prompts_needs_a_workspace_copy(isolated_home: Path) -> None:
    before = _packaged_snapshot()
    refused = runner.invoke(app, ["prompts", "save", "upsell", "--note", "warmer", "--as", "mk@acme.example"])
    assert refused.exit_code == 2 and "packaged defaults" in refused.stderr and "outreach init" in refused.stderr
    assert runner.invoke(app, ["prompts", "promote", "upsell", "1", "--label", "staging"]).exit_code == 2
    runner.invoke(app, ["init", "--no-example-data"])
    working = isolated_home / "prompts" / "upsell.md.j2"
    working.write_text(working.read_text().replace("No hype", "Never any hype"))
    following = str(int(Registry.open(isolated_home / "prompts").resolve("upsell")) + 1)  # after the shipped version
    saved = runner.invoke(app, ["prompts", "save", "upsell", "-m", "warmer", "--as", "mk@acme.example"])
    assert saved.exit_code == 0 and f"Saved upsell version {following}" in saved.stdout
    registry = (isolated_home / "prompts" / "registry.yaml").read_text()
    assert "author: mk@acme.example" in registry
    assert (isolated_home / f"prompts/history/upsell/v{following}.md.j2").exists()
    old = runner.invoke(app, ["prompts", "promote", "upsell", following, "--label", "staging",
                              "--author", "lead@acme.example"])
    assert old.exit_code == 0 and "--author is deprecated; use --as" in old.stderr
    assert "author: lead@acme.example" in (isolated_home / "prompts" / "registry.yaml").read_text()
    assert _packaged_snapshot() == before


def test_acting_user_comes_from_outreach_user(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.invoke(app, ["init", "--no-example-data"])
    working = isolated_home / "prompts" / "bundle.md.j2"
    working.write_text(working.read_text().replace("No hype", "Never any hype"))
    monkeypatch.setenv("OUTREACH_USER", "rep@acme.example")
    assert runner.invoke(app, ["prompts", "save", "bundle", "-m", "shorter"]).exit_code == 0
    assert "author: rep@acme.example" in (isolated_home / "prompts" / "registry.yaml").read_text()
