"""Many of an account's recent tickets about one topic: the team spends its time on one problem.

A ticket's topic is its first topical tag (DuckDB), else the TF-IDF word of its subject
(:mod:`outreach.engine.topics`, in Python, for the untagged ones).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from outreach.engine.catalog import Catalog
from outreach.engine.names import label
from outreach.engine.tables import INT, TEXT, TIME, create_table
from outreach.engine.topics import GENERIC_TAGS, TicketText, ticket_topics
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Detection, Example, SignalView, TriggerSpec, WindowSettings, Wording


class TicketTopicCluster(WindowSettings):
    window_days: int = Field(default=90, gt=0)
    share: float = Field(default=0.3, gt=0, le=1)
    min_tickets: int = Field(default=3, gt=0)
    weight: float = Field(default=0.75, ge=0)


def prepare(ctx: Detection, s: TicketTopicCluster) -> None:
    """``ticket_topic``: (account_id, ticket_id, topic, created_at, seq) for the analysed accounts' tickets of the
    window, as :func:`outreach.engine.topics.ticket_topics` gives them: DuckDB takes the first topical tag, Python
    the untagged tickets (ticket ids are unique: the loader refuses a repeated one)."""
    con = ctx.con
    tagged = f"list_filter(tags, lambda t: t <> '' AND NOT list_contains({sql.texts(sorted(GENERIC_TAGS))}, t))[1]"
    # Dates before the analysis date, compared as timestamps (created_at is naive UTC): no cast per ticket.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ticket_topic AS
        SELECT t.account_id, t.id AS ticket_id, {tagged} AS topic, t.created_at, t.seq
        FROM ticket_rows t SEMI JOIN account_dim USING (account_id)
        WHERE t.created_at < $as_of::TIMESTAMP AND t.created_at >= $start::TIMESTAMP
        """,
        {"as_of": ctx.as_of, "start": ctx.as_of - timedelta(days=s.window_days)},
    )
    rows = con.execute(
        "SELECT t.seq, t.id, t.account_id, t.subject, t.description, t.tags, t.created_at "
        "FROM ticket_rows t SEMI JOIN (SELECT seq FROM ticket_topic WHERE topic IS NULL) u USING (seq) ORDER BY seq"
    ).fetchall()
    if not rows:
        return
    con.execute("DELETE FROM ticket_topic WHERE topic IS NULL")
    topics = ticket_topics(TicketText(row[1], row[2], row[3], row[4], tuple(row[5])) for row in rows)
    create_table(
        con,
        "python_topic",
        {"account_id": TEXT, "ticket_id": TEXT, "topic": TEXT, "created_at": TIME, "seq": INT},
        [
            (account_id, ticket_id, topics[ticket_id], created_at, seq)
            for seq, ticket_id, account_id, *_, created_at in rows
        ],
    )
    con.execute("INSERT INTO ticket_topic SELECT * FROM python_topic")


def query(ctx: Detection, s: TicketTopicCluster) -> str:
    return f"""
        WITH topic_counts AS (SELECT account_id, topic, count(*) AS n FROM ticket_topic GROUP BY ALL),
        topic_best AS (
            SELECT account_id, first(topic ORDER BY n DESC, topic) AS topic, max(n) AS n, sum(n) AS total
            FROM topic_counts GROUP BY account_id
        )
        SELECT account_id, topic AS subject,
               json_object('topic', topic, 'tickets', n, 'total_tickets', total,
                           'share_pct', round_even(100 * (n / total), 0)::BIGINT,
                           'window_days', {s.window_days}) AS figures,
               evidence, {s.window_days} AS window_days
        FROM (
            SELECT b.account_id, b.topic, b.n, b.total,
                   {ctx.newest("t.ticket_id", "(t.created_at, -t.seq)")} AS evidence
            FROM topic_best b JOIN ticket_topic t ON t.account_id = b.account_id AND t.topic = b.topic
            WHERE b.n >= {s.min_tickets} AND b.n / b.total >= {sql.double(s.share)}
            GROUP BY ALL
        )"""


def _topic(signal: SignalView) -> str:
    return label(str(signal.figures["topic"]))


def headline(signal: SignalView, _catalog: Catalog) -> str:
    return f"Making {_topic(signal)} easier"


def opening(signal: SignalView, _catalog: Catalog, _plan: str) -> str:
    return (f"Questions about {_topic(signal)} have come up in several of your recent support conversations. Each one "
            "is time your team could spend elsewhere.")


SPEC = TriggerSpec(
    kind="ticket_topic_cluster",
    motion="cross_sell",
    settings=TicketTopicCluster,
    summary=(
        "in {window_days} days, one topic holds ≥ {min_tickets} tickets and ≥ {share:.0%} of the account's tickets"
    ),
    figures=("topic", "tickets", "total_tickets", "share_pct", "window_days"),
    prepare=prepare,
    prepares=("ticket_topic", "python_topic"),
    query=query,
    statement=(
        f"'opened ' || {sql.fig('tickets')} || ' of ' || {sql.fig('total_tickets')} || ' support tickets about ' || "
        f"{sql.label(sql.fig('topic'))} || ' ' || {sql.WINDOW} || ' (' || {sql.fig('share_pct')} || '%)'"
    ),
    strength=lambda s: sql.ratio("share_pct", 100 * s.share),
    offer_keys=("topic:{topic}",),
    wording=Wording(
        headline=headline, opening=opening, terms=lambda s, c: (_topic(s),), bridge=lambda s, c: f"For the {_topic(s)} questions", consequence="That is a lot of the team's time spent on one problem."),
    example=Example(
        subject="data_exports",
        figures={"topic": "data_exports", "tickets": 4, "total_tickets": 9, "share_pct": 44, "window_days": 90},
        window_days=90,
        statement="opened 4 of 9 support tickets about data exports in the last 90 days (44%)",
        strength=1.1,
    ),
)
