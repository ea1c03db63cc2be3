"""The retention figures against a scenario computed by hand (every number derived in the comments).

Q3 2026 (Jul 1 – Sep 30), known on Oct 15. Rates: 1 EUR = 1.10 USD; the report is in USD.

account  currency  contract    accounts.csv MRR  in Q3                                   end of Q3
a        USD       2025-01-01  1,000             +700 upgrade Jul 10, churn Aug 20        0
b        USD       2025-01-01    100             +1,000 seat add Jul 5, churn Sep 1       0
c        USD       2025-01-01  2,000             −500 contraction Jul 20, +300 upg Sep 10 1,800
d        EUR       2025-06-01    900 (= 990 USD) +100 EUR add-on Aug 1 (= 110 USD)       1,100 USD
e        USD       2026-08-01    500             a new customer in Q3: not in the cohort
zz       —         —             —               +5,000 upgrade Jul 1: unknown account → unmatched

start  = 1,000 + 100 + 2,000 + 990                        = 4,090
end    = 0 + 0 + 1,800 + 1,100                            = 2,900          NRR = 2,900 / 4,090 = 70.90 %
kept   = min(start, end) per account = 0 + 0 + 1,800 + 990 = 2,790          GRR = 2,790 / 4,090 = 68.22 %
lost   = 4,090 − 2,790                                    = 1,300  (a loses 1,000 not 1,700; b 100 not 1,100)
flows: expansion 700 + 1,000 + 300 + 110 = 2,110; contraction 500; churn 1,700 (a) + 1,100 (b) = 2,800;
       4,090 + 2,110 − 500 − 2,800 = 2,900 (the same NRR).
The non-standard GRR (start − contraction − churn) / start would say (4,090 − 500 − 2,800) / 4,090 = 19.3 %.
"""

from __future__ import annotations

from datetime import date

import pytest

from outreach.errors import ConfigError
from outreach.metrics.outcomes import Outcome
from outreach.metrics.report import Inputs, compute, difference_interval, nrr, parse_period

Q3 = parse_period("2026-Q3", as_of=date(2026, 10, 15))
AS_OF = date(2026, 10, 15)
KIND = {"upgrade": "expansion", "seat_add": "expansion", "addon_purchase": "expansion", "contraction": "contraction",
        "churn": "churn"}


def outcome(number: int, account: str, kind: str, delta: float | None, day: date, currency: str | None = None) -> Outcome:
    return Outcome(number, account, KIND[kind], kind, None, delta, day, currency, f"o-{number}")


def scenario() -> Inputs:
    return Inputs(
        touches=[],
        outcomes=[
            outcome(1, "zz", "upgrade", 5000, date(2026, 7, 1)),
            outcome(2, "b", "seat_add", 1000, date(2026, 7, 5)),
            outcome(3, "a", "upgrade", 700, date(2026, 7, 10)),
            outcome(4, "c", "contraction", -500, date(2026, 7, 20)),
            outcome(5, "d", "addon_purchase", 100, date(2026, 8, 1), "EUR"),
            outcome(6, "a", "churn", None, date(2026, 8, 20)),
            outcome(7, "b", "churn", None, date(2026, 9, 1)),
            outcome(8, "c", "upgrade", 300, date(2026, 9, 10)),
        ],
        baseline_mrr={"a": 1000, "b": 100, "c": 2000, "d": 900, "e": 500},
        contract_start={"a": date(2025, 1, 1), "b": date(2025, 1, 1), "c": date(2025, 1, 1), "d": date(2025, 6, 1),
                        "e": date(2026, 8, 1)},
        currencies={"a": "USD", "b": "USD", "c": "USD", "d": "EUR", "e": "USD"},
        rates={"USD": 1.0, "EUR": 1.1},
    )


def test_standard_grr_and_nrr_match_the_hand_computation() -> None:
    report = compute(scenario(), Q3, AS_OF)
    r = report.retention
    assert r is not None and report.currency == "USD"
    assert (r.start_mrr, r.accounts, r.end_mrr) == (pytest.approx(4090), 4, pytest.approx(2900))
    assert (r.expansion, r.contraction, r.churn) == (pytest.approx(2110), 500, 2800)
    assert r.lost == pytest.approx(1300)
    assert r.nrr == pytest.approx(2900 / 4090) and round(100 * r.nrr, 2) == 70.90
    assert r.grr == pytest.approx(2790 / 4090) and round(100 * r.grr, 2) == 68.22
    # zz is not in accounts.csv: listed, counted nowhere (not even as organic expansion).
    assert [(u.account_id, u.kind, u.mrr_delta) for u in report.unmatched] == [("zz", "upgrade", 5000)]
    assert report.organic.expansions == 4 and report.organic.mrr == pytest.approx(700 + 1000 + 300 + 110)


def test_grr_edge_cases() -> None:
    # Starts at 100, gains 1,000 and churns: GRR 0 %, not −1,000 %.
    gained_then_lost = nrr({"x": 100}, [outcome(1, "x", "seat_add", 1000, date(2026, 7, 2)),
                                        outcome(2, "x", "churn", None, date(2026, 8, 2))], Q3)
    assert (gained_then_lost.grr, gained_then_lost.nrr, gained_then_lost.lost) == (0, 0, 100)
    # Starts at 1,000, adds 700 and churns: loses 1,000 (GRR 82.0 % for a 1,000 + 4,556 book; 69.4 % if the 1,700 counted).
    book = {"x": 1000, "y": 4556}
    added_then_churned = nrr(book, [outcome(1, "x", "upgrade", 700, date(2026, 7, 2)),
                                    outcome(2, "x", "churn", None, date(2026, 8, 2))], Q3)
    assert added_then_churned.lost == 1000 and round(100 * (added_then_churned.grr or 0), 1) == 82.0
    # Expansion given back inside the period is not a loss: 1,000 → 1,500 → 1,100 keeps GRR at 100 %.
    given_back = nrr({"x": 1000}, [outcome(1, "x", "upgrade", 500, date(2026, 7, 2)),
                                   outcome(2, "x", "contraction", -400, date(2026, 8, 2))], Q3)
    assert (given_back.grr, given_back.nrr) == (1.0, 1.1)
    # Never above 100 %: pure expansion.
    grown = nrr({"x": 1000}, [outcome(1, "x", "upgrade", 500, date(2026, 7, 2))], Q3)
    assert (grown.grr, grown.nrr) == (1.0, 1.5)


def test_periods_without_data_say_so() -> None:
    before = compute(scenario(), parse_period("2024-Q4", as_of=AS_OF), AS_OF)  # first contract 2025-01-01
    assert before.no_data == "no data: the period ends before the first contract starts (2025-01-01)"
    assert before.retention is not None and before.retention.nrr is None and before.retention.no_data
    after = compute(scenario(), parse_period("2027-Q1", as_of=AS_OF), AS_OF)
    assert after.no_data == "no data: the period starts after the analysis date (2026-10-15)"
    assert after.retention is not None and after.retention.nrr is None and after.retention.start_mrr == 0


def test_mixed_currencies_need_a_rates_table() -> None:
    inputs = scenario()
    inputs.rates = None
    with pytest.raises(ConfigError, match="several currencies \\(EUR, USD\\)"):
        compute(inputs, Q3, AS_OF)
    inputs.rates = {"USD": 1.0}
    with pytest.raises(ConfigError, match="no rate for EUR"):
        compute(inputs, Q3, AS_OF)


def test_lift_interval_matches_newcombe() -> None:
    # 8 of 20 contacted accounts expanded, 2 of 20 control accounts: lift 30 pp.
    # Wilson 95 %: 8/20 → [0.2188, 0.6134]; 2/20 → [0.0279, 0.3010].
    # Newcombe: low  = 0.3 − √((0.4 − 0.2188)² + (0.3010 − 0.1)²) = 0.3 − 0.2706 = 0.0294
    #           high = 0.3 + √((0.6134 − 0.4)² + (0.1 − 0.0279)²) = 0.3 + 0.2253 = 0.5253
    low, high = difference_interval((8, 20), (2, 20)) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.0294, 0.5253)
    assert difference_interval((0, 0), (2, 20)) is None
