"""Custom triggers: a product's own signal, defined in rules.yaml with no code.

    custom_triggers:
      reports_shared:                      # the kind: a new snake_case name
        motion: cross_sell                 # upsell | cross_sell
        event: Report Shared               # events with this name…
        where: {channel: email}            # …optionally whose properties equal these values
        at_least: 5                        # fires at this many events in the window…
        sum_of: null                       # …or, set to a property, when the sum of it reaches at_least
        window_days: 30
        statement: "shared {count} reports by email in the last {window_days} days"

Each becomes a :class:`~outreach.engine.triggers.spec.TriggerSpec` like a built-in one: its query joins the
same DuckDB statement, its statement is written by DuckDB from the figures (``count``, ``sum``,
``window_days``), and the catalog removes it with ``solves: [trigger:<kind>]``. The statement is a template,
not code: only those placeholders, without attribute access, conversions or format specs.
"""

from __future__ import annotations

import string
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from outreach.engine.triggers import sql
from outreach.engine.triggers.registry import CUSTOM_LIMIT_FIGURE, CUSTOM_WORDING
from outreach.engine.triggers.spec import Detection, Example, Figure, TriggerSettings, TriggerSpec
from outreach.types import Motion

Scalar = str | int | float | bool


def _check_property(name: str) -> str:
    if not name.strip() or name.startswith(("$", "/")):
        raise ValueError(f"'{name}' is not a property name (it must not be empty or start with $ or /)")
    return name


class CustomTrigger(TriggerSettings):
    """One ``custom_triggers`` entry (the docs: docs/engine.md, "Custom triggers")."""

    motion: Motion
    event: str = Field(min_length=1, description="The Segment event name counted.")
    where: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="Only events whose properties equal these values (a list: any of them)."
    )
    at_least: float = Field(gt=0, description="Fires when the count (or the sum) in the window reaches this.")
    sum_of: str | None = Field(default=None, description="A numeric property to sum instead of counting events.")
    window_days: int = Field(default=30, gt=0)
    statement: str = Field(min_length=1, description="The friction, with {count}, {sum} and {window_days}.")
    plan_limit: str | None = Field(
        default=None, description="Upsell only: the plan limit (metric) the count or sum presses against."
    )
    weight: float = Field(default=0.7, ge=0, description="Kind weight in the friction strength.")

    @field_validator("where")
    @classmethod
    def _where(cls, where: dict[str, Scalar | list[Scalar]]) -> dict[str, Scalar | list[Scalar]]:
        for name, value in where.items():
            _check_property(name)
            if isinstance(value, list) and not value:
                raise ValueError(f"'{name}': an empty list matches no event")
        return where

    @field_validator("sum_of")
    @classmethod
    def _sum_of(cls, name: str | None) -> str | None:
        return None if name is None else _check_property(name)

    @field_validator("statement")
    @classmethod
    def _statement(cls, statement: str, info: ValidationInfo) -> str:
        allowed = placeholders(info.data.get("sum_of") is not None)
        try:
            parsed = list(string.Formatter().parse(statement))
        except ValueError as error:
            raise ValueError(f"{error} (write {{{{ and }}}} for a literal brace)") from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in allowed:
                raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join('{' + a + '}' for a in allowed)}")
            if spec or conversion:
                raise ValueError(f"{{{name}}}: format specs and conversions are not supported")
        return statement

    @field_validator("plan_limit")
    @classmethod
    def _plan_limit(cls, metric: str | None, info: ValidationInfo) -> str | None:
        if metric is not None and info.data.get("motion") != "upsell":
            raise ValueError("plan_limit needs motion: upsell (a plan limit is an upsell)")
        return metric

    @property
    def value_figure(self) -> str:
        return "sum" if self.sum_of is not None else "count"


def placeholders(with_sum: bool) -> tuple[str, ...]:
    return ("count", "sum", "window_days") if with_sum else ("count", "window_days")


def _number(value: Figure) -> str:
    """A figure as the statements print it: whole numbers of 10,000 or more grouped."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def format_statement(template: str, figures: dict[str, Figure]) -> str:
    """The statement for ``figures``, as DuckDB writes it (for previews; the engine's statement is SQL)."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(_number(figures[name]))
    return "".join(parts).strip()


def _statement_sql(template: str) -> str:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(sql.text(literal))
        if name is not None:
            parts.append(sql.grouped(name))
    return " || ".join(parts) or "''"


def _match(name: str, value: Scalar) -> str:
    field = f"props->>{sql.text(name)}"
    if isinstance(value, bool):
        return f"(json_type(props->{sql.text(name)}) = 'BOOLEAN' AND {field} = {sql.text(str(value).lower())})"
    if isinstance(value, int | float):
        return f"TRY_CAST({field} AS DOUBLE) = {sql.double(value)}"
    return f"{field} = {sql.text(value)}"


def _where_sql(where: dict[str, Scalar | list[Scalar]]) -> str:
    conditions = []
    for name, value in where.items():
        options = value if isinstance(value, list) else [value]
        conditions.append("(" + " OR ".join(_match(name, option) for option in options) + ")")
    return "".join(f" AND {condition}" for condition in conditions)


def _summary(trigger: CustomTrigger) -> str:
    """When it fires, in the words of the docs' trigger table (braces escaped: it is formatted again)."""
    where = ", ".join(
        f"`{name}` = " + " or ".join(str(v) for v in (value if isinstance(value, list) else [value]))
        for name, value in trigger.where.items()
    )
    what = f"`{trigger.event}`" + (f" with {where}" if where else "")
    text = (
        f"the sum of `{trigger.sum_of}` over {what} reaches " if trigger.sum_of else f"{what} "
    ).replace("{", "{{").replace("}", "}}")
    return text + ("{at_least:g}" if trigger.sum_of else "≥ {at_least:g} times") + " in {window_days} days"


def compile_trigger(kind: str, trigger: CustomTrigger) -> TriggerSpec[CustomTrigger]:
    """The spec of a custom trigger: the same shape as a built-in one, so every stage treats it alike."""
    value = trigger.value_figure
    figures: tuple[str, ...] = ("count", "window_days")
    if trigger.sum_of is not None:
        figures += ("sum",)
    if trigger.plan_limit is not None:
        figures += (CUSTOM_LIMIT_FIGURE,)

    def query(ctx: Detection, s: CustomTrigger) -> str:
        total = f"sum(TRY_CAST(props->>{sql.text(s.sum_of)} AS DOUBLE))" if s.sum_of else "NULL::DOUBLE"
        measure = total if s.sum_of else "count(*)"
        metric = sql.text(s.plan_limit) if s.plan_limit else "NULL"
        return f"""
            SELECT account_id, NULL AS subject,
                   json_merge_patch(json_object('count', n, 'window_days', {s.window_days}),
                                    json_object('sum', {sql.num("total")}, '{CUSTOM_LIMIT_FIGURE}', {metric})) AS figures,
                   evidence, {s.window_days} AS window_days
            FROM (
                SELECT account_id, count(*) AS n, {total} AS total,
                       {ctx.newest("message_id", "(ts, line)")} AS evidence
                FROM events
                WHERE event = {sql.text(s.event)} AND ts >= {ctx.since(s.window_days)} AND ts < {ctx.end_sql}
                      {_where_sql(s.where)}
                GROUP BY account_id HAVING {measure} >= {sql.double(s.at_least)}
            )"""

    example_figures: dict[str, Figure] = {"count": _whole(trigger.at_least), "window_days": trigger.window_days}
    if trigger.sum_of is not None:
        example_figures["sum"] = _whole(trigger.at_least)
    if trigger.plan_limit is not None:
        example_figures[CUSTOM_LIMIT_FIGURE] = trigger.plan_limit
    return TriggerSpec(
        kind=kind,
        motion=trigger.motion,
        settings=CustomTrigger,
        summary=_summary(trigger),
        figures=figures,
        query=query,
        statement=_statement_sql(trigger.statement),
        strength=lambda s: sql.ratio(value, s.at_least),
        limit_figure=CUSTOM_LIMIT_FIGURE if trigger.plan_limit else None,
        usage_figures=(value,),
        wording=CUSTOM_WORDING,
        example=Example(
            subject=None,
            figures=example_figures,
            window_days=trigger.window_days,
            statement=format_statement(trigger.statement, example_figures),
            strength=round(trigger.weight, 4),
        ),
    )


def _whole(value: float) -> Any:
    return int(value) if float(value).is_integer() else value
