"""An integration asked for, in the product or in a support ticket: until the systems talk, someone copies data.

A ticket counts when it names a known integration (from the events or the catalog's ``integration:<name>``
solves) and asks for it: the ``integration(s)`` tag or integration wording. DuckDB matches ASCII text (RE2 and
Python's ``re`` agree there); :mod:`outreach.engine.topics` does the rest.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import proper_name
from outreach.engine.tables import INT, TEXT, create_table
from outreach.engine.topics import INTEGRATION_WORDS, integration_mentions
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import (
    Detection,
    Example,
    SignalView,
    TriggerSpec,
    WindowSettings,
    Wording,
    product_name,
)

_WORD_START, _WORD_END = "\\b\\Q", "\\E\\b"


class IntegrationRequest(WindowSettings):
    window_days: int = Field(default=60, gt=0)
    min_requests: int = Field(default=1, gt=0)
    weight: float = Field(default=0.8, ge=0)


def catalog_integrations(catalog: Catalog) -> set[str]:
    """Integrations the catalog sells (``integration:<name>`` in a plan's or add-on's solves), lower-case."""
    names: set[str] = set()
    for solves in [*(addon.solves for addon in catalog.addons), *(plan.solves for plan in catalog.plans)]:
        for solved in solves:
            if solved.lower().startswith("integration:"):
                names.add(solved.split(":", 1)[1].lower())
    return names


def _event_integrations(ctx: Detection, s: IntegrationRequest) -> set[str]:
    """Integrations named in the requests of the window (lower-case)."""
    rows = ctx.con.execute(
        f"SELECT DISTINCT lower(props->>'integration') FROM events WHERE event = ? "
        f"AND ts >= {ctx.since(s.window_days)} AND ts < ? AND props->>'integration' IS NOT NULL",
        [ctx.events.integration_requested, ctx.end],
    ).fetchall()
    return {str(row[0]) for row in rows}


def prepare(ctx: Detection, s: IntegrationRequest) -> None:
    """``ticket_mention``: (account_id, integration, ticket_id, seq) for every integration ask in the analysed
    accounts' tickets of the window. DuckDB reads the tickets where they are (no copy of their text): the
    asking wording first, the names only in the tickets that ask."""
    con = ctx.con
    known = _event_integrations(ctx, s) | catalog_integrations(ctx.catalog)
    names = sorted(known)
    # Dates before the analysis date, compared as timestamps (created_at is naive UTC): no cast per ticket.
    window = "t.created_at < $as_of::TIMESTAMP AND t.created_at >= $start::TIMESTAMP"
    params = {"as_of": ctx.as_of, "start": ctx.as_of - timedelta(days=s.window_days)}
    ascii_text = "strlen(t.subject) = length(t.subject) AND strlen(t.description) = length(t.description)"
    in_sql = len(names) <= 200 and all(name.isascii() and "\\" not in name for name in names)
    words = sql.text(INTEGRATION_WORDS.pattern)
    # On ASCII text, matching subject and description apart, ignoring case, is matching the lower-cased
    # "subject\ndescription" (no alternative of the wording holds a line break).
    asks = (
        "list_contains(t.tags, 'integration') OR list_contains(t.tags, 'integrations') "
        f"OR regexp_matches(t.subject, {words}, 'i') OR regexp_matches(t.description, {words}, 'i')"
    )
    text = "lower(t.subject || chr(10) || t.description)"
    # \Q...\E quotes the name for RE2 as re.escape does for Python; \b is the same on ASCII text.
    found = [
        f"CASE WHEN regexp_matches({text}, {sql.text(_WORD_START + name + _WORD_END)}) THEN {sql.text(name)} END"
        for name in names
    ]
    matched = (
        f"list_filter([{', '.join(found)}]::VARCHAR[], lambda n: n IS NOT NULL)" if found else "[]::VARCHAR[]"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ticket_mention "
        "(account_id VARCHAR, integration VARCHAR, ticket_id VARCHAR, seq BIGINT)"
    )
    if not names:
        return  # no integration to find
    if in_sql:
        con.execute(
            f"""
            INSERT INTO ticket_mention
            SELECT t.account_id, unnest({matched}) AS integration, t.id AS ticket_id, t.seq
            FROM ticket_rows t SEMI JOIN account_dim USING (account_id)
            WHERE {window} AND {ascii_text} AND ({asks})
            """,
            params,
        )
    rest = con.execute(
        "SELECT t.account_id, t.id, t.seq, t.subject, t.description, t.tags "
        f"FROM ticket_rows t SEMI JOIN account_dim USING (account_id) WHERE {window} "
        f"{f'AND NOT ({ascii_text})' if in_sql else ''} ORDER BY t.seq",
        params,
    ).fetchall()
    mentions = [
        (account_id, name, ticket_id, seq)
        for account_id, ticket_id, seq, subject, description, tags in rest
        for name in integration_mentions(subject, description, tags, known)
    ]
    if mentions:
        create_table(
            con,
            "python_mention",
            {"account_id": TEXT, "integration": TEXT, "ticket_id": TEXT, "seq": INT},
            mentions,
        )
        con.execute("INSERT INTO ticket_mention SELECT * FROM python_mention")


def query(ctx: Detection, s: IntegrationRequest) -> str:
    return f"""
        WITH integration_events AS (
            SELECT account_id, lower(props->>'integration') AS subject, count(*) AS n,
                   {ctx.newest("message_id", "(ts, line)")} AS evidence
            FROM events
            WHERE event = {sql.text(ctx.events.integration_requested)} AND ts >= {ctx.since(s.window_days)}
              AND ts < {ctx.end_sql} AND props->>'integration' IS NOT NULL
            GROUP BY ALL
        ),
        integration_tickets AS (
            SELECT account_id, integration AS subject, list(ticket_id ORDER BY seq) AS ids
            FROM ticket_mention GROUP BY ALL
        )
        SELECT account_id, subject,
               json_object('integration', subject, 'requests', coalesce(e.n, 0), 'tickets', coalesce(len(k.ids), 0),
                           'window_days', {s.window_days}) AS figures,
               list_concat(coalesce(e.evidence, []::VARCHAR[]), coalesce(k.ids, []::VARCHAR[]))[1:{ctx.evidence_cap}]
                   AS evidence,
               {s.window_days} AS window_days
        FROM integration_events e FULL OUTER JOIN integration_tickets k USING (account_id, subject)
        WHERE coalesce(e.n, 0) + coalesce(len(k.ids), 0) >= {s.min_requests}"""


def strength(s: IntegrationRequest) -> str:
    """Requests plus tickets past the threshold, growing with the log of the count past 1."""
    requests = (
        f"(({sql.fig_double('requests')} + {sql.fig_double('tickets')}) / {float(s.min_requests)!r}::DOUBLE)"
    )
    return f"(CASE WHEN {requests} > 1 THEN 1 + log2({requests}) ELSE {requests} END)"


def _name(signal: SignalView) -> str:
    return proper_name(str(signal.figures["integration"]))


def headline(signal: SignalView, catalog: Catalog) -> str:
    return f"Connecting {_name(signal)} to {product_name(catalog)}"


def opening(signal: SignalView, _catalog: Catalog, _plan: str) -> str:
    return (f"Your team asked about connecting {_name(signal)}. Until the two systems talk to each other, someone "
            "copies the data across by hand.")


SPEC = TriggerSpec(
    kind="integration_request",
    motion="cross_sell",
    settings=IntegrationRequest,
    summary=(
        "≥ {min_requests} `{events.integration_requested}`, or a ticket asking for an integration, in "
        "{window_days} days"
    ),
    figures=("integration", "requests", "tickets", "window_days"),
    prepare=prepare,
    prepares=("ticket_mention", "python_mention"),
    query=query,
    subject_name=lambda subject, _catalog: proper_name(subject),
    statement=(
        f"'asked about a ' || name || ' integration (' || concat_ws(' and ', "
        f"CASE WHEN {sql.fig_int('requests')} <> 0 THEN 'asked for it in the product ' || "
        f"{sql.times(sql.fig_int('requests'))} END, "
        f"CASE WHEN {sql.fig_int('tickets')} <> 0 THEN 'in ' || {sql.fig_int('tickets')} || ' support ticket' || "
        f"CASE WHEN {sql.fig_int('tickets')} <> 1 THEN 's' ELSE '' END END) || ') ' || {sql.WINDOW}"
    ),
    strength=strength,
    offer_keys=("integration:{integration}",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_name(s),), bridge=lambda s, c: f"For the {_name(s)} connection", consequence="Until the systems talk to each other, someone is copying data by hand."
    ),
    example=Example(
        subject="hubspot",
        figures={"integration": "hubspot", "requests": 2, "tickets": 1, "window_days": 60},
        window_days=60,
        statement=(
            "asked about a HubSpot integration (asked for it in the product twice and in 1 support ticket) in the "
            "last 60 days"
        ),
        strength=2.068,
    ),
)
