"""The prompt registry: immutable versions, labels, label resolution by the pipeline, diffs, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from outreach import bundled
from outreach.cli.tuning import register
from outreach.drafting.drafts import open_workspace, run_drafts
from outreach.drafting.providers.offline import OfflineProvider
from outreach.drafting.registry import Registry, load_templates
from outreach.errors import ConflictError, DataError, NotFoundError, OutreachError
from tests.helpers import AS_OF, make_data_dir
from tests.tuning_helpers import copy_prompts

# The shipped production version of upsell and the number its next save gets.
CURRENT = Registry.open(bundled.PROMPTS).resolve("upsell")
NEXT = str(int(CURRENT) + 1)


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return copy_prompts(tmp_path / "prompts")


def _edited(prompts: Path, old: str = "No hype", new: str = "Never any hype") -> str:
    source = (prompts / "upsell.md.j2").read_text(encoding="utf-8")
    assert old in source
    return source.replace(old, new)


def test_shipped_registry_matches_the_working_copies() -> None:
    registry = Registry.open(bundled.PROMPTS)
    for name in ("upsell", "cross_sell", "bundle", "followup"):
        latest = registry.entry(name).latest()
        assert latest is not None and registry.resolve(name) == latest.version  # production is the newest
        assert registry.template(name, latest.version).sha256 == registry.working(name).sha256


def test_save_creates_the_next_version_and_labels_pick_it(prompts: Path) -> None:
    registry = Registry.open(prompts)
    saved = registry.save("upsell", _edited(prompts), note="stricter on hype", author="mo@ledgerly.example")
    assert saved.version == NEXT and saved.author == "mo@ledgerly.example"
    assert (prompts / "history" / "upsell" / f"v{NEXT}.md.j2").read_text().count(f'version: "{NEXT}"') == 1
    assert Registry.open(prompts).working("upsell").version == NEXT  # the working copy follows the save
    # production still points at the current version until someone promotes the new one
    assert load_templates(prompts)["upsell"].version == CURRENT
    registry.promote("upsell", NEXT, "staging", author="mo@ledgerly.example")
    assert load_templates(prompts, label="staging")["upsell"].version == NEXT
    assert load_templates(prompts, label="staging")["cross_sell"].version == Registry.open(prompts).resolve("cross_sell")
    assert [i.labels for i in registry.versions("upsell")][-2:] == [["production"], ["staging"]]
    before = [p.label for p in Registry.open(prompts).entry("upsell").promotions]
    registry.promote("upsell", NEXT, "production")
    assert load_templates(prompts)["upsell"].version == NEXT
    assert [p.label for p in Registry.open(prompts).entry("upsell").promotions] == [*before, "production"]


def test_a_saved_version_is_immutable(prompts: Path) -> None:
    registry = Registry.open(prompts)
    path = prompts / "history" / "upsell" / f"v{CURRENT}.md.j2"
    path.write_text(path.read_text().replace("No hype", "Some hype"), encoding="utf-8")
    with pytest.raises(DataError, match="was changed after it was saved"):
        load_templates(prompts)
    with pytest.raises(DataError, match="immutable"):
        registry.get(f"upsell@{CURRENT}")


def test_save_refuses_no_change_overwrites_and_bad_templates(prompts: Path) -> None:
    registry = Registry.open(prompts)
    with pytest.raises(ConflictError, match=f"nothing changed since version {CURRENT}"):
        registry.save("upsell", (prompts / "upsell.md.j2").read_text(), note="same")
    with pytest.raises(OutreachError, match="change note"):
        registry.save("upsell", _edited(prompts), note="  ")
    with pytest.raises(DataError, match="unknown variable 'ofer'"):
        registry.save("upsell", _edited(prompts, "{{ offer.id }}", "{{ ofer.id }}"), note="typo")
    with pytest.raises(DataError, match="must keep the name"):
        registry.save("upsell", _edited(prompts, "name: upsell", "name: other"), note="rename")
    (prompts / "history" / "upsell" / f"v{NEXT}.md.j2").write_text("stray", encoding="utf-8")
    with pytest.raises(ConflictError, match="never overwritten"):
        registry.save("upsell", _edited(prompts), note="would clobber")
    assert Registry.open(prompts).entry("upsell").versions[-1].version == CURRENT


def test_references_and_errors(prompts: Path) -> None:
    registry = Registry.open(prompts)
    assert registry.get("upsell").version == CURRENT
    assert registry.get("upsell@production").version == CURRENT
    assert registry.get(str(prompts / "bundle.md.j2")).name == "bundle"
    with pytest.raises(NotFoundError, match="no version 9"):
        registry.get("upsell@9")
    assert registry.resolve("upsell", "nope") == CURRENT  # an unknown label falls back to production
    with pytest.raises(NotFoundError, match="template 'ghost' has no label 'nope'"):
        registry.get("ghost@nope")
    with pytest.raises(OutreachError, match="cannot be a label"):
        registry.promote("upsell", "1", "Working")


def test_drafts_record_the_production_version(prompts: Path, tmp_path: Path) -> None:
    registry = Registry.open(prompts)
    registry.save("upsell", _edited(prompts), note="v2")
    workspace = open_workspace(make_data_dir(tmp_path / "data"), AS_OF, prompts_dir=prompts)
    records, _ = run_drafts(workspace.decisions, workspace.context, OfflineProvider())
    upsells = [r for r in records if r.template == "upsell"]
    assert upsells and {(r.template_version, r.template_sha256) for r in upsells} == {
        (CURRENT, registry.template("upsell", CURRENT).sha256)}


def test_cli_versions_diff_save_promote(prompts: Path, tmp_path: Path) -> None:
    app, group = typer.Typer(), typer.Typer()
    app.add_typer(group, name="prompts")
    register(app, group)
    runner = CliRunner()
    (prompts / "upsell.md.j2").write_text(_edited(prompts), encoding="utf-8")
    shown = runner.invoke(app, ["prompts", "versions", "upsell", "--prompts", str(prompts)])
    assert shown.exit_code == 0 and "unsaved changes" in shown.output
    saved = runner.invoke(app, ["prompts", "save", "upsell", "--note", "no hype", "--prompts", str(prompts)])
    assert saved.exit_code == 0 and f"Saved upsell version {NEXT}" in saved.output
    diff = runner.invoke(app, ["prompts", "diff", "upsell", CURRENT, NEXT, "--prompts", str(prompts)])
    assert diff.exit_code == 0
    assert "-- No hype and no generic lines" in diff.output and "+- Never any hype" in diff.output
    promoted = runner.invoke(app, ["prompts", "promote", "upsell", NEXT, "--label", "production",
                                   "--prompts", str(prompts)])
    assert promoted.exit_code == 0 and load_templates(prompts)["upsell"].version == NEXT
    missing = runner.invoke(app, ["prompts", "promote", "upsell", "7", "--label", "production",
                                  "--prompts", str(prompts)])
    assert missing.exit_code == 2 and "no version 7" in missing.output
