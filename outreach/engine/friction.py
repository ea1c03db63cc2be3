"""Friction: each fired trigger restated as the specific, quantified problem the customer already feels.

The statement is built only from the signal's figures, so every number in it is true; drafting later checks
that every number in an email appears among these figures. Statements and strengths are computed in DuckDB
over ``signal_rows`` (see :mod:`outreach.engine.triggers.detection`), from each trigger spec's statement and
strength; only the display names of subjects (features, integrations, departments, add-ons) are looked up in
Python, once per distinct name.
"""

from __future__ import annotations

from typing import Any, TypedDict

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field

from outreach.engine.catalog import Catalog
from outreach.engine.rules import Rules
from outreach.engine.tables import TEXT, create_table
from outreach.engine.triggers import sql
from outreach.engine.triggers.spec import Figure, TriggerSettings, TriggerSpec
from outreach.types import Motion


class Friction(BaseModel):
    """A fired trigger with its plain-language statement, figures, window and evidence."""

    model_config = ConfigDict(frozen=True)

    kind: str
    motion: Motion
    subject: str | None = None
    statement: str
    figures: dict[str, Figure] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    window_days: int | None = None
    strength: float = 0.0

    @property
    def id(self) -> str:
        """Stable id within an account: kind plus subject (``<kind>:<subject>``, or the kind alone)."""
        return f"{self.kind}:{self.subject}" if self.subject else self.kind


class FrictionRecord(TypedDict):
    """:class:`Friction` as the plain dict the engine computes (validated into Friction only when asked)."""

    kind: str
    motion: Motion
    subject: str | None
    statement: str
    figures: dict[str, Figure]
    window_days: int | None
    strength: float
    evidence: list[str]


def frictions(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: Rules
) -> dict[str, list[FrictionRecord]]:
    """Every account's frictions from ``signal_rows``, strongest first (ties by kind, then subject).

    Strength is the trigger's weight times how far past its threshold the signal is (capped at
    ``strength_cap``); it picks the primary friction when several fire.
    """
    rank_frictions(con, catalog, rules)
    result: dict[str, list[FrictionRecord]] = {}
    rows = con.execute(
        "SELECT account_id, kind, motion, subject, statement, figures::VARCHAR, window_days, strength, evidence "
        "FROM friction_rows ORDER BY ord, pos"
    ).fetchall()
    loads = orjson.loads
    for account_id, kind, motion, subject, statement, figures, window_days, strength, evidence in rows:
        record: FrictionRecord = {
            "kind": kind,
            "motion": motion,
            "subject": subject,
            "statement": statement,
            "figures": loads(figures),
            "window_days": window_days,
            "strength": strength,
            "evidence": evidence,
        }
        found = result.get(account_id)
        if found is None:
            result[account_id] = [record]
        else:
            found.append(record)
    return result


def _register_names(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, specs: list[tuple[TriggerSpec[Any], TriggerSettings]]
) -> None:
    """``subject_name``: the display name of each distinct subject that statements spell out."""
    namers = {spec.kind: spec.subject_name for spec, _ in specs if spec.subject_name is not None}
    named = con.execute(
        f"SELECT DISTINCT kind, subject FROM signal_rows WHERE list_contains({sql.texts(sorted(namers))}, kind) "
        "AND subject IS NOT NULL"
    ).fetchall()
    create_table(
        con,
        "subject_name",
        {"kind": TEXT, "subject": TEXT, "name": TEXT},
        [(kind, subject, namers[kind](subject, catalog)) for kind, subject in named],
    )


_WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"


def rank_frictions(con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: Rules) -> None:
    """``friction_rows``: ``signal_rows`` worded and ranked. Adds ``statement``, ``strength``, ``pos`` (1 = the
    account's strongest friction; ties by kind, then subject, then figures, so the order never depends on the
    run) and ``fid`` (the friction id, kind:subject)."""
    specs = rules.trigger_specs()
    _register_names(con, catalog, specs)
    cap = sql.double(rules.strength_cap)
    statement = " ".join(f"WHEN {sql.text(spec.kind)} THEN {spec.statement}" for spec, _ in specs)
    strength = " ".join(
        f"WHEN {sql.text(spec.kind)} THEN "
        f"round_even({float(settings.weight)!r}::DOUBLE * least({spec.strength(settings)}, {cap}), 4)"
        for spec, settings in specs
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE friction_rows AS
        SELECT *, row_number() OVER (PARTITION BY account_id
                                     ORDER BY strength DESC, kind, coalesce(subject, ''), figures::VARCHAR) AS pos,
               CASE WHEN coalesce(subject, '') <> '' THEN kind || ':' || subject ELSE kind END AS fid
        FROM (
            SELECT s.ord, s.account_id, s.kind, s.motion, s.subject,
                   trim(CASE s.kind {statement} END, {_WHITESPACE}) AS statement,
                   s.figures, s.window_days, (CASE s.kind {strength} END)::DOUBLE AS strength, s.evidence
            FROM (SELECT r.*, n.name FROM signal_rows r
                  LEFT JOIN subject_name n ON n.kind = r.kind AND n.subject = r.subject) s
        )
        """
    )
