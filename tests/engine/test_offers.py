"""The offer removes the strongest friction, from the catalog, sized to use, never discounted unless green."""

from __future__ import annotations

from pathlib import Path

from outreach.engine.data import load_dataset
from outreach.engine.decisions import Decision, decide, rules_for
from tests.datadir import AS_OF, DataDir


def decide_one(data: DataDir, tmp_path: Path) -> Decision:
    dataset = load_dataset(data.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    return decision


def limit_hits(data: DataDir, limit: str = "reports", used: int = 50, cap: int = 50, times: int = 3) -> None:
    for day in range(times):
        data.event("acme", "Limit Reached", day + 1, limit=limit, used=used, cap=cap)


def test_limit_hits_offer_smallest_plan_with_headroom(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    limit_hits(datadir)  # team caps reports at 50; 50 * 1.2 = 60 → business (200)
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None
    assert (offer.id, offer.kind, offer.motion, offer.price_monthly) == ("business", "plan", "upsell", 499)
    assert offer.friction == "repeated_limit_hits:reports" and offer.discount_pct == 0


def test_headroom_skips_a_plan_that_would_be_full_again(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", plan="starter", seats_purchased=5).active("acme")
    limit_hits(datadir, used=45, cap=20)  # need 54: team caps at 50, business at 200
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None and offer.id == "business"


def test_no_higher_plan_means_no_offer_for_that_friction(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", plan="enterprise", seats_purchased=100).active("acme")
    limit_hits(datadir)
    decision = decide_one(datadir, tmp_path)
    assert decision.offer is None and decision.cohort == "nurture"  # never a ready account without an offer
    assert [(r.rule, r.message) for r in decision.gate.reasons] == [
        (
            "no_offer",
            "nothing in the catalog removes repeated_limit_hits:reports; "
            "add a plan or add-on with solves: [trigger:repeated_limit_hits]",
        )
    ]


def test_seat_pack_sized_to_use_plus_growth(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=20).active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=20)  # 20 * 1.2 = 24 → 4 more → 5-pack
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None and (offer.id, offer.kind, offer.quantity) == ("seats-5", "seat_pack", 1)


def test_large_seat_need_takes_several_packs(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", seats_purchased=100, plan="business").active("acme")
    datadir.event("acme", "Usage Reported", 1, metric="seats", used=100)  # need 20 more → 2 × 10-pack
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None and (offer.id, offer.quantity, offer.price_monthly) == ("seats-10", 2, 220)


def test_cross_sell_addon_matches_solves(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    datadir.event("acme", "Integration Requested", 2, integration="salesforce")
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None and (offer.id, offer.kind, offer.motion) == (
        "salesforce-sync",
        "addon",
        "cross_sell",
    )


def test_addon_requiring_a_higher_plan_is_not_offered(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", plan="starter", seats_purchased=5).active("acme")
    datadir.event("acme", "Integration Requested", 2, integration="salesforce")
    decision = decide_one(datadir, tmp_path)
    assert decision.offer is None


def test_strongest_friction_picks_the_offer_others_support(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=9).active("acme")
    limit_hits(datadir, times=6)
    datadir.event("acme", "Integration Requested", 2, integration="salesforce")
    decision = decide_one(datadir, tmp_path)
    assert decision.frictions[0].kind == "repeated_limit_hits"
    assert decision.offer is not None and decision.offer.id == "business"
    assert decision.offer.supporting == ["integration_request:salesforce", "strong_nps:nps"]


def test_bundle_for_green_account_with_capped_discount(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=10).active("acme")
    limit_hits(datadir, times=6)
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.5, rows=10)
    decision = decide_one(datadir, tmp_path)
    assert decision.health.band == "green"
    offer = decision.offer
    assert offer is not None and (offer.id, offer.kind, offer.motion) == ("growth-bundle", "bundle", "bundle")
    assert offer.discount_pct == 10  # bundle says 20, policy caps at 10
    assert offer.includes == ["business", "warehouse-sync"] and offer.price_monthly == 648


def test_no_bundle_or_discount_for_yellow_account(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=2).active("acme", users=5, prior_users=10)
    datadir.event("acme", "Feature Used", 3, feature="dashboards")
    limit_hits(datadir, times=6)
    for day in range(8):
        datadir.event("acme", "Export Created", day + 0.5, rows=10)
    for days in (3, 4):
        datadir.ticket("acme", days, "Question", status="open")
    decision = decide_one(datadir, tmp_path)
    assert decision.health.band == "yellow"
    assert decision.offer is not None and decision.offer.kind == "plan" and decision.offer.discount_pct == 0


def test_locked_feature_offers_plan_that_has_it(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme").active("acme")
    for days in (1, 2, 3):
        datadir.event("acme", "Locked Feature Clicked", days, feature="custom_roles")
    offer = decide_one(datadir, tmp_path).offer
    assert offer is not None and offer.id == "enterprise"


def test_offers_only_reference_catalog_ids(datadir: DataDir, tmp_path: Path) -> None:
    datadir.account("acme", nps=10, employees_at_contract=10, employees_now=30).active("acme")
    limit_hits(datadir)
    dataset = load_dataset(datadir.write(tmp_path / "data"))
    [decision] = decide(dataset, rules_for(dataset), AS_OF)
    assert decision.offer is not None and decision.offer.id in dataset.catalog.all_ids()
