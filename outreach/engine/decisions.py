"""One decision per account: signals → friction → health gate → offer → cohort.

This is what ``outreach explain`` shows and what drafting consumes. The cohort is ``ready`` (a signal, the
gate passes and the catalog has an offer), ``nurture`` (a signal, but gated; ``no_offer`` is the gate reason
when nothing in the catalog removes the friction) or ``not_fit`` (no signal: never pitched just because the
account bought one thing).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any, TypedDict, cast

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict

from outreach import bundled
from outreach.engine.data import Account, Dataset, check_event_numbers, load_dataset, paused_gc
from outreach.engine.friction import Friction, FrictionRecord, rank_frictions
from outreach.engine.health import Gate, GateRecord, Health, HealthRecord, health_sql, register_open_tickets
from outreach.engine.offers import Offer, OfferRecord, offer_sql, register_catalog
from outreach.engine.rules import Rules, load_project_rules
from outreach.engine.tables import BOOL, DATE, TEXT, create_table, engine_session, sql_ordered_list
from outreach.engine.triggers.detection import detect
from outreach.types import Cohort, OfferMotion

NO_TRIGGER = "none"

logger = logging.getLogger(__name__)


class DecisionRecord(TypedDict):
    """A :class:`Decision` without its account, as the plain records the engine computes."""

    cohort: Cohort
    health: HealthRecord
    gate: GateRecord
    frictions: list[FrictionRecord]
    offer: OfferRecord | None


def json_row(account: Account, record: DecisionRecord) -> dict[str, Any]:
    """One element of the documented ``explain --json`` array (docs/engine.md)."""
    health, offer = record["health"], record["offer"]
    return {
        "account_id": account.account_id,
        "name": account.name,
        "plan": account.plan,
        "owner_email": account.owner_email,
        "cohort": record["cohort"],
        "health": {"score": health["score"], "band": health["band"], "components": health["components"]},
        "signals": record["frictions"],
        "gate": record["gate"],
        "offer": None
        if offer is None
        else {
            "id": offer["id"],
            "kind": offer["kind"],
            "motion": offer["motion"],
            "name": offer["name"],
            "price_monthly": offer["price_monthly"],
            "quantity": offer["quantity"],
            "discount_pct": offer["discount_pct"],
            "friction": offer["friction"],
            "supporting": offer["supporting"],
        },
    }


class Decision(BaseModel):
    """Everything the engine concluded about one account on one analysis date."""

    model_config = ConfigDict(frozen=True)

    account: Account
    as_of: date
    cohort: Cohort
    health: Health
    gate: Gate
    frictions: list[Friction]
    offer: Offer | None

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def primary_friction(self) -> Friction | None:
        if self.offer is not None:
            for friction in self.frictions:
                if friction.id == self.offer.friction:
                    return friction
        return self.frictions[0] if self.frictions else None

    @property
    def motion(self) -> OfferMotion:
        """How the account is approached: the offer's motion (a bundle too), else its strongest friction's."""
        if self.offer is not None:
            return self.offer.motion
        primary = self.primary_friction()
        return primary.motion if primary is not None else "upsell"

    @property
    def trigger(self) -> str:
        """The kind of the friction the decision rests on (:data:`NO_TRIGGER` without one)."""
        primary = self.primary_friction()
        return primary.kind if primary is not None else NO_TRIGGER

    @property
    def unoffered(self) -> bool:
        """Triggered, but nothing in the catalog removes its friction (gate reason ``no_offer``)."""
        return any(reason.rule == "no_offer" for reason in self.gate.reasons)

    def to_json(self) -> dict[str, Any]:
        """The documented ``explain --json`` shape (docs/engine.md)."""
        record = cast(DecisionRecord, self.model_dump(include=set(DecisionRecord.__annotations__)))
        return json_row(self.account, record)


def decide(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    last_contacted: Mapping[str, date] | None = None,
    held_out: Callable[[Account], bool] | None = None,
    account_ids: set[str] | None = None,
) -> list[Decision]:
    """Decide every account (or those in ``account_ids``), in accounts.csv order.

    ``last_contacted`` (from the sequence scheduler) and ``held_out`` (the A/B control group) feed the gate.
    """
    records = decide_records(
        dataset, rules, as_of, last_contacted=last_contacted, held_out=held_out, account_ids=account_ids
    )
    with paused_gc():
        decisions = [Decision(account=account, as_of=as_of, **record) for account, record in records]
    if logger.isEnabledFor(logging.INFO):
        cohorts = Counter(d.cohort for d in decisions)
        logger.info("decided %d accounts as of %s: %d ready, %d nurture, %d not fit", len(decisions), as_of,
                    cohorts["ready"], cohorts["nurture"], cohorts["not_fit"])
    return decisions


def decide_records(
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    *,
    last_contacted: Mapping[str, date] | None = None,
    held_out: Callable[[Account], bool] | None = None,
    account_ids: set[str] | None = None,
) -> list[tuple[Account, DecisionRecord]]:
    """:func:`decide` as plain records (JSON-shaped dicts), in accounts.csv order."""
    accounts = [a for a in dataset.accounts if account_ids is None or a.account_id in account_ids]
    with paused_gc(), engine_session(dataset.events) as con:
        _decide(con, dataset, rules, as_of, last_contacted or {}, held_out, account_ids)
        rows = con.execute(
            "SELECT to_json({'cohort': cohort, 'health': health, 'gate': gate, 'frictions': frictions, "
            "'offer': offer})::VARCHAR FROM decision ORDER BY ord"
        ).fetchall()
        return [(account, orjson.loads(row[0])) for account, row in zip(accounts, rows, strict=True)]


# The accounts the offers and the decision are computed for (see _decide_range).
_IN_RANGE = "ord >= getvariable('decide_from') AND ord < getvariable('decide_to')"

# A friction in the ``explain --json`` shape, with what the gate and the decision need of the primary one.
_FRICTION_ENTRY = (
    "{'json': to_json({'kind': kind, 'motion': motion, 'subject': subject, 'statement': statement, "
    "'figures': figures, 'window_days': window_days, 'strength': strength, 'evidence': evidence}), "
    "'fid': fid, 'kind': kind}"
)

# A triggered account the catalog has nothing for is never ready: it is told, not skipped (``no_offer``).
_NO_OFFER = (
    "'nothing in the catalog removes ' || f.primary_fid"
    " || CASE WHEN f.friction_count > 1 THEN ' (nor the ' || (f.friction_count - 1) || ' other friction'"
    " || CASE WHEN f.friction_count > 2 THEN 's' ELSE '' END || ')' ELSE '' END"
    " || '; add a plan or add-on with solves: [trigger:' || f.primary_kind || ']'"
)


def _decide(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    rules: Rules,
    as_of: date,
    last_contacted: Mapping[str, date],
    held_out: Callable[[Account], bool] | None,
    account_ids: set[str] | None,
) -> None:
    """Fill the temporary view ``decision`` on ``con`` (an engine session): one row per analysed account (all,
    or those in ``account_ids``; ``ord`` is its position among them, in file order) with cohort, health, gate,
    frictions and offer.

    Every stage is SQL over all accounts at once (docs/engine.md, "Where each stage runs"); Python only
    prepares small tables. Account records are built only for ``held_out``, which needs them.
    """
    catalog = dataset.catalog
    check_event_numbers(con, dataset, rules.events.model_dump())
    detect(con, dataset, rules, as_of, account_ids=account_ids)
    rank_frictions(con, catalog, rules)
    con.execute("DROP TABLE signal_rows")  # friction_rows holds them now, worded and ranked
    register_open_tickets(con, rules, as_of)
    contacts: list[tuple[str, date | None, bool]] = [
        (account_id, day, False) for account_id, day in last_contacted.items()
    ]
    if held_out is not None:
        contacts = [
            (a.account_id, last_contacted.get(a.account_id), bool(held_out(a)))
            for a in dataset.accounts
            if account_ids is None or a.account_id in account_ids
        ]
    create_table(
        con,
        "contact",
        {"account_id": TEXT, "last_contacted": DATE, "held_out": BOOL},
        [row for row in contacts if row[1] is not None or row[2]],
    )
    # A table, computed once: the offer stage reads the bands and the decision the whole record.
    con.execute(f"CREATE OR REPLACE TEMP TABLE account_health AS {health_sql(rules, catalog, as_of)}")
    for done in ("usage_facts", "open_ticket_facts"):  # in account_health now: their memory goes to the offers
        con.execute(f"DROP TABLE {done}")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW account_band AS SELECT account_id, health.band AS band FROM account_health "
        f"WHERE {_IN_RANGE}"
    )
    register_catalog(con, catalog)
    # The offers and the decision are computed for the accounts in one range of positions at a time
    # (:func:`_decide_range`; all of them unless a caller narrows it), so their working memory is bounded.
    _decide_range(con, 0, _ALL)
    con.execute(f"CREATE OR REPLACE TEMP VIEW friction_scope AS SELECT * FROM friction_rows WHERE {_IN_RANGE}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW account_scope AS SELECT * FROM account_dim WHERE {_IN_RANGE}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW account_offer AS {offer_sql(rules, catalog)}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW decision AS
        SELECT ord, account_id, name, plan, owner_email,
               CASE WHEN frictions IS NULL THEN 'not_fit' WHEN len(reasons) = 0 THEN 'ready' ELSE 'nurture' END
                   AS cohort,
               health, {{'allowed': len(reasons) = 0, 'reasons': reasons}} AS gate,
               coalesce(frictions, []::JSON[]) AS frictions, offer
        FROM (
            SELECT h.ord, d.account_id, d.name, d.plan, d.owner_email, h.health, f.frictions, o.offer,
                   CASE WHEN f.frictions IS NOT NULL AND o.offer IS NULL
                        THEN list_append(h.reasons, {{'rule': 'no_offer', 'message': {_NO_OFFER}}})
                        ELSE h.reasons END AS reasons
            FROM (SELECT * FROM account_health WHERE {_IN_RANGE}) h
            JOIN account_scope d USING (account_id)
            LEFT JOIN (
                SELECT account_id, list_transform(ranked, lambda r: r.json) AS frictions, ranked[1].fid AS primary_fid,
                       ranked[1].kind AS primary_kind, len(ranked) AS friction_count
                FROM (
                    SELECT account_id, {sql_ordered_list(_FRICTION_ENTRY, "pos")} AS ranked
                    FROM friction_scope GROUP BY account_id
                )
            ) f USING (account_id)
            LEFT JOIN account_offer o USING (account_id)
        )
        """
    )


_ALL = 2**62

# explain_json_chunks decides this many accounts per statement: a million accounts' offers and JSON in one
# statement peaked at 5 GB (DuckDB's aggregates and the sort of 700 MB of JSON); a range needs a twentieth.
ACCOUNTS_PER_RANGE = 50_000


def _decide_range(con: duckdb.DuckDBPyConnection, start: int, stop: int) -> None:
    """Narrow the ``decision`` (and ``account_offer``) views of ``con`` to the accounts at positions ``start`` to
    ``stop`` - 1."""
    con.execute(f"SET VARIABLE decide_from = {int(start)}")
    con.execute(f"SET VARIABLE decide_to = {int(stop)}")



def unoffered_line(decisions: list[Decision]) -> str | None:
    """One line naming the triggered accounts the catalog has no offer for (``draft`` prints it), or None."""
    found = [decision.account_id for decision in decisions if decision.unoffered]
    if not found:
        return None
    names = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return (
        f"{len(found)} triggered account{'s' if len(found) != 1 else ''} not drafted: nothing in the catalog "
        f"removes {'their' if len(found) != 1 else 'its'} friction ({names}); see `outreach explain` (gate no_offer)"
    )


def decisions_to_json(decisions: list[Decision]) -> list[dict[str, Any]]:
    """The ``explain --json`` payload for many decisions (GC paused: see :func:`outreach.engine.data.paused_gc`)."""
    with paused_gc():
        return [decision.to_json() for decision in decisions]


_EXPLAIN_ROW = """
to_json({'account_id': account_id, 'name': name, 'plan': plan, 'owner_email': owner_email, 'cohort': cohort,
         'health': {'score': health.score, 'band': health.band, 'components': health.components},
         'signals': frictions, 'gate': gate,
         'offer': CASE WHEN offer IS NULL THEN NULL ELSE
             {'id': offer.id, 'kind': offer.kind, 'motion': offer.motion, 'name': offer.name,
              'price_monthly': offer.price_monthly, 'quantity': offer.quantity, 'discount_pct': offer.discount_pct,
              'friction': offer.friction, 'supporting': offer.supporting} END})::VARCHAR
"""


def _explain(dataset: Dataset, rules: Rules, as_of: date, cohort: Cohort | None, select: str,
             held_out: Callable[[Account], bool] | None = None) -> list[Any]:
    """``select`` (an expression over ``row``, the account's JSON) for each decided account, in accounts.csv
    order. DuckDB returns them unordered and Python sorts the positions: ordering 116 MB of JSON in the query
    cost 0.2 s more than sorting 100k integers."""
    with engine_session(dataset.events) as con:
        _decide(con, dataset, rules, as_of, {}, held_out, None)
        rows = con.execute(
            f"SELECT ord, {select} FROM (SELECT ord, {_EXPLAIN_ROW} AS row FROM decision "
            "WHERE $cohort::VARCHAR IS NULL OR cohort = $cohort)",
            {"cohort": cohort},
        ).fetchall()
    rows.sort(key=itemgetter(0))
    return [value for _, value in rows]


def explain_rows(
    dataset: Dataset, rules: Rules, as_of: date, *, cohort: Cohort | None = None
) -> list[dict[str, Any]]:
    """The ``explain --json`` payload as Python values, optionally one cohort only."""
    with paused_gc():
        return [orjson.loads(row) for row in _explain(dataset, rules, as_of, cohort, "row")]


def explain_json(dataset: Dataset, rules: Rules, as_of: date, *, cohort: Cohort | None = None,
                 held_out: Callable[[Account], bool] | None = None) -> bytes:
    """``explain --json`` output: a JSON array with one account per line (UTF-8, newline-terminated)."""
    return b"".join(explain_json_chunks(dataset, rules, as_of, cohort=cohort, held_out=held_out))


def explain_json_chunks(
    dataset: Dataset, rules: Rules, as_of: date, *, cohort: Cohort | None = None,
    held_out: Callable[[Account], bool] | None = None, accounts_per_chunk: int = 4096,
) -> Iterator[bytes]:
    """:func:`explain_json` in pieces, in accounts.csv order, to write as they come: a million accounts are
    700 MB of JSON, which then never sits in memory whole (nor twice, as a list and joined).

    DuckDB writes each account's JSON and hands over the bytes; Python only joins them, so accounts never
    become Python dicts.
    """
    with paused_gc(), engine_session(dataset.events) as con:  # a GC pass over the loaded dataset per chunk
        _decide(con, dataset, rules, as_of, {}, held_out, None)  # would cost more than the fetch
        found = con.execute("SELECT count(*) FROM account_dim").fetchone()
        separator = b"[\n"
        for start in range(0, found[0] if found else 0, ACCOUNTS_PER_RANGE):
            _decide_range(con, start, start + ACCOUNTS_PER_RANGE)
            result = con.execute(
                f"SELECT encode({_EXPLAIN_ROW}) FROM decision WHERE $cohort::VARCHAR IS NULL OR cohort = $cohort "
                "ORDER BY ord",
                {"cohort": cohort},
            )
            while rows := result.fetchmany(accounts_per_chunk):
                yield separator + b",\n".join([row[0] for row in rows])
                separator = b",\n"
        yield b"[]\n" if separator == b"[\n" else b"\n]\n"


def rules_for(dataset: Dataset, rules_path: Path | None = None) -> Rules:
    """Defaults < the workspace's ``rules.yaml`` (``outreach init``) < ``<data dir>/rules.yaml`` < ``rules_path``
    < catalog ``policy.thresholds`` (and the catalog's ``trigger:<kind>`` solves checked against them)."""
    workspace = bundled.workspace_layer("rules")
    return load_project_rules(dataset.root, rules_path, catalog=dataset.catalog, workspace=workspace).rules


def explain(data_dir: Path | str, as_of: date, *, rules_path: Path | None = None,
            held_out: Callable[[Account], bool] | None = None) -> list[Decision]:
    """Load a data directory and decide every account: the library behind ``outreach explain``. ``held_out``
    is the A/B control group (:meth:`outreach.drafting.routing.TrafficRouter.held_out`), as ``draft`` uses it."""
    dataset = load_dataset(data_dir)
    return decide(dataset, rules_for(dataset, rules_path), as_of, held_out=held_out)
