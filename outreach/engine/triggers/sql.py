"""DuckDB expression helpers the trigger specs share: literals, windows, figures and the way statements print them."""

from __future__ import annotations

from datetime import datetime, timedelta

from outreach.engine.names import TIMES
from outreach.engine.tables import sql_float, sql_text, sql_texts

text = sql_text
texts = sql_texts
double = sql_float


def since(end: datetime, days: int) -> str:
    """The start of a window of ``days`` ending at ``end``, as a TIMESTAMP literal."""
    return f"TIMESTAMP '{(end - timedelta(days=days)).isoformat(sep=' ')}'"


def num(expr: str) -> str:
    """A figure as JSON the way Python's statements print it: integral values as integers, others to 2 places."""
    return (
        f"(CASE WHEN ({expr}) IS NULL THEN NULL::JSON WHEN ({expr}) = trunc({expr}) THEN to_json(({expr})::BIGINT) "
        f"ELSE to_json(round_even(({expr})::DOUBLE, 2)) END)"
    )


# Figures of a ``signal_rows`` row, in statements and strengths.


def fig(key: str) -> str:
    """The figure as text."""
    return f"(figures->>'{key}')"


def fig_int(key: str) -> str:
    return f"(figures->>'{key}')::BIGINT"


def fig_double(key: str) -> str:
    return f"(figures->>'{key}')::DOUBLE"


def grouped(key: str) -> str:
    """A figure as text, large counts grouped (870,000); the figure itself stays a number."""
    kind = f"json_type(figures, '$.{key}')"
    return (
        f"(CASE WHEN {kind} IN ('BIGINT', 'UBIGINT') AND abs({fig_double(key)}) >= 10000 "
        f"THEN format('{{:,}}', {fig_int(key)}) "
        f"WHEN {kind} = 'DOUBLE' AND abs({fig_double(key)}) >= 10000 THEN format('{{:,}}', {fig_double(key)}) "
        f"ELSE {fig(key)} END)"
    )


def has(key: str) -> str:
    return f"((figures->'{key}') IS NOT NULL)"


def times(expr: str) -> str:
    """"once", "twice", "N times" (:data:`outreach.engine.names.TIMES`)."""
    cases = " ".join(f"WHEN {expr} = {count} THEN {sql_text(word)}" for count, word in TIMES.items())
    return f"(CASE {cases} ELSE {expr} || ' times' END)"


def label(expr: str) -> str:
    """An identifier from the data as words (``storage_gb`` → storage gb)."""
    return f"replace({expr}, '_', ' ')"


def ratio(key: str, threshold: float) -> str:
    """How far a figure is past its threshold (1.0 = at it)."""
    return f"{fig_double(key)} / {float(threshold)!r}::DOUBLE"


WINDOW = "(CASE WHEN coalesce(window_days, 0) <> 0 THEN 'in the last ' || window_days || ' days' ELSE '' END)"

# Seats a seat friction needs before growth: the seats in use it reports, else the seats the account has
# (``m.seats`` in the offer stage: the figure, the purchased seats or the plan's seat limit).
SEATS_IN_USE = "coalesce(nullif(TRY_CAST(f.figures->>'seats_used' AS DOUBLE), 0), m.seats::DOUBLE)"
