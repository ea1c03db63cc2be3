"""Each validation rule has a draft that breaks it and is caught; the offline drafts pass every rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.drafting.config import ValidationPolicy
from outreach.drafting.drafts import Workspace
from outreach.drafting.facts import DraftFacts
from outreach.drafting.providers.base import Draft
from outreach.drafting.providers.offline import draft_offline
from outreach.drafting.validation import Issue, fact_numbers, numbers_in, validate_draft


def check(workspace: Workspace, draft: Draft, facts: DraftFacts, policy: ValidationPolicy | None = None) -> list[Issue]:
    return validate_draft(
        draft,
        facts,
        workspace.context.catalog,
        policy or workspace.context.config.validation,
        other_accounts=workspace.context.accounts,
    )


def rules(issues: list[Issue]) -> set[str]:
    return {issue.rule for issue in issues}


def with_body(facts: DraftFacts, extra: str) -> Draft:
    draft = draft_offline(facts)
    return draft.model_copy(update={"body": draft.body.replace("Best,", extra + "\n\nBest,")})


@pytest.mark.parametrize("account", ["a1", "a2", "a3"])
def test_offline_drafts_pass_every_rule(workspace: Workspace, account: str) -> None:
    facts = workspace.context.facts(workspace.decision(account))
    assert check(workspace, draft_offline(facts), facts) == []


def test_numbers_are_extracted_in_every_spelling() -> None:
    found = {value for value, _ in numbers_in("1,200 rows, 50% of $99.50, three times, a 30-day window")}
    assert found == {1200.0, 50.0, 99.5, 3.0, 30.0}
    assert numbers_in("see https://example.com/2026/11 or mail ops2@example.com") == []


def test_fact_numbers_come_from_trusted_facts_only(upsell: DraftFacts) -> None:
    allowed = fact_numbers(upsell)
    assert {4.0, 10.0, 30.0, 299.0} <= allowed
    poisoned = upsell.model_copy(update={"tickets": [], "champion_name": "Dana 77"})
    assert 77.0 not in fact_numbers(poisoned)


def test_invented_number_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "Teams like yours save 12 hours a week."), upsell)
    assert rules(issues) == {"number"}
    assert "'12'" in issues[0].message


def test_written_out_number_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "Seven of your peers already moved."), upsell)
    assert "number" in rules(issues)


def test_other_plan_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "If that is too much, Starter is cheaper."), upsell)
    assert "catalog_name" in rules(issues)
    assert any("Starter" in i.message for i in issues)


def test_addon_not_on_offer_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "Salesforce Sync pairs well with it."), upsell)
    assert "catalog_name" in rules(issues)


def test_bundle_contents_and_current_plan_are_allowed(workspace: Workspace, bundle: DraftFacts) -> None:
    draft = with_body(bundle, "You are on Team today; Business and Warehouse Sync come together.")
    assert "catalog_name" not in rules(check(workspace, draft, bundle))


def test_wrong_price_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "It is only $99 a month."), upsell)
    assert "price" in rules(issues)


def test_foreign_link_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    for link in ("https://evil.example.net/login", "www.bit.ly/deal", "pricing-now.com", "evil.co.uk/pay"):
        issues = check(workspace, with_body(upsell, f"Details: {link}"), upsell)
        assert "url" in rules(issues), link
    assert "email" in rules(check(workspace, with_body(upsell, "Write to help@rival.io"), upsell))


def test_company_links_are_allowed(workspace: Workspace, upsell: DraftFacts) -> None:
    draft = with_body(upsell, "Pricing: https://northwind.example/pricing and https://docs.northwind.example/x")
    assert "url" not in rules(check(workspace, draft, upsell))


def test_discount_without_an_offer_discount_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "Use the coupon for a free month."), upsell)
    assert "discount" in rules(issues)


def test_discount_above_policy_is_caught(workspace: Workspace, bundle: DraftFacts) -> None:
    issues = check(workspace, with_body(bundle, "For you it is 40% off."), bundle)
    assert "discount" in rules(issues)
    tight = ValidationPolicy(max_discount_pct=5)
    assert "discount" in rules(check(workspace, draft_offline(bundle), bundle, tight))


def test_bundle_discount_within_policy_is_allowed(workspace: Workspace, bundle: DraftFacts) -> None:
    assert "10% less" in draft_offline(bundle).body
    assert check(workspace, draft_offline(bundle), bundle) == []


def test_any_discount_to_a_non_green_account_is_caught(workspace: Workspace, bundle: DraftFacts) -> None:
    yellow = bundle.model_copy(update={"account": bundle.account.model_copy(update={"health_band": "yellow"})})
    issues = check(workspace, draft_offline(bundle), yellow)
    assert "discount" in rules(issues)
    assert "yellow" in next(i.message for i in issues if i.rule == "discount")


def test_banned_phrase_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "It lets you Unlock Premium Features."), upsell)
    assert rules(issues) == {"banned_phrase"}
    custom = ValidationPolicy(banned_phrases=["short call"])
    assert "banned_phrase" in rules(check(workspace, draft_offline(upsell), upsell, custom))


def test_length_limits_are_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    draft = draft_offline(upsell)
    long_subject = draft.model_copy(update={"subject": "Hitting the reports limit " + "again and " * 10})
    assert "length" in rules(check(workspace, long_subject, upsell))
    long_body = with_body(upsell, "More words here. " * 80)
    assert "length" in rules(check(workspace, long_body, upsell))
    words = ValidationPolicy(max_body_words=20)
    assert "length" in rules(check(workspace, draft, upsell, words))


def test_empty_parts_are_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    draft = draft_offline(upsell).model_copy(update={"subject": " ", "call_to_action": ""})
    assert [i.rule for i in check(workspace, draft, upsell)].count("empty") == 2


def test_other_account_is_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    by_name = check(workspace, with_body(upsell, "Borealis Logistics made the same move."), upsell)
    assert "other_account" in rules(by_name)
    by_domain = check(workspace, with_body(upsell, "Ask the team at cobalt.test."), upsell)
    assert "other_account" in rules(by_domain)


def test_wrong_offer_and_unknown_friction_ids_are_caught(workspace: Workspace, upsell: DraftFacts) -> None:
    draft = draft_offline(upsell).model_copy(update={"offer_id": "enterprise", "friction_ids": ["made_up"]})
    assert rules(check(workspace, draft, upsell)) == {"offer_id", "friction_id"}


def test_issues_keep_the_offending_text(workspace: Workspace, upsell: DraftFacts) -> None:
    issues = check(workspace, with_body(upsell, "See https://evil.example.net/x"), upsell)
    assert any(i.excerpt == "https://evil.example.net/x" for i in issues)


def test_policy_file_overrides_defaults(tmp_path: Path) -> None:
    from outreach.drafting.config import load_drafting_config
    from outreach.errors import DataError

    override = tmp_path / "drafting.yaml"
    override.write_text("validation:\n  max_subject_chars: 60\n")
    config = load_drafting_config(override)
    assert config.validation.max_subject_chars == 60
    assert "act now" in config.validation.banned_phrases
    override.write_text("validation:\n  max_subject_chars: 60\n  typo_field: 1\n")
    with pytest.raises(DataError, match=r"drafting.yaml:3: field 'validation.typo_field'"):
        load_drafting_config(override)
