"""The trigger registry: every built-in trigger's :class:`~outreach.engine.triggers.spec.TriggerSpec`.

Built-ins are the modules of :mod:`outreach.engine.triggers.builtin`, each exporting ``SPEC``; they are found by
listing that package, so adding one is adding a module. Custom triggers (``custom_triggers`` in rules.yaml,
:mod:`outreach.engine.triggers.custom`) are compiled into specs of the same shape by the rules; the stages
ask the rules for the full list. Drafting words a custom kind it has no spec for from its statement
(:data:`CUSTOM_WORDING`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Any

from outreach.engine.catalog import Catalog
from outreach.engine.triggers import builtin as builtin_package
from outreach.engine.triggers.spec import (
    EventNames,
    Figure,
    SignalView,
    TriggerSettings,
    TriggerSpec,
    Wording,
)

MOTION_ORDER = {"upsell": 0, "cross_sell": 1}


def _discover() -> tuple[TriggerSpec[Any], ...]:
    found: list[TriggerSpec[Any]] = []
    for module in pkgutil.iter_modules(builtin_package.__path__):
        spec = getattr(importlib.import_module(f"{builtin_package.__name__}.{module.name}"), "SPEC", None)
        if not isinstance(spec, TriggerSpec):
            raise TypeError(f"{builtin_package.__name__}.{module.name} has no SPEC (a TriggerSpec)")
        if spec.kind != module.name:
            raise TypeError(
                f"{builtin_package.__name__}.{module.name} defines kind '{spec.kind}': name the module after it"
            )
        found.append(spec)
    return tuple(sorted(found, key=lambda spec: (MOTION_ORDER[spec.motion], spec.kind)))


BUILTIN: tuple[TriggerSpec[Any], ...] = _discover()
_BY_KIND: dict[str, TriggerSpec[Any]] = {spec.kind: spec for spec in BUILTIN}


def builtin_kinds() -> tuple[str, ...]:
    """The built-in kinds, upsell first, each motion in alphabetical order."""
    return tuple(spec.kind for spec in BUILTIN)


def builtin(kind: str) -> TriggerSpec[Any] | None:
    return _BY_KIND.get(kind)


def _capitalised_statement(signal: SignalView, _catalog: Catalog) -> str:
    statement = signal.statement.strip()
    return statement[:1].upper() + statement[1:]


# A custom trigger's statement is the user's own wording; its headline is that statement.
CUSTOM_WORDING = Wording(headline=_capitalised_statement)

# The figure a custom trigger with ``plan_limit`` names its metric in (see custom.py).
CUSTOM_LIMIT_FIGURE = "metric"


def wording(kind: str) -> Wording:
    """How drafting words a friction of ``kind``."""
    spec = _BY_KIND.get(kind)
    return spec.wording if spec is not None else CUSTOM_WORDING


def limited_metric(kind: str, figures: Mapping[str, Figure]) -> str | None:
    """The plan limit (metric) a friction presses against, if any: what a higher plan must raise."""
    spec = _BY_KIND.get(kind)
    key = spec.limit_figure if spec is not None else CUSTOM_LIMIT_FIGURE
    value = figures.get(key) if key else None
    return str(value) if value not in (None, "") else None


def asked_feature(kind: str, figures: Mapping[str, Figure]) -> str | None:
    """The feature a friction asks for, if any: what the offer should lead with."""
    spec = _BY_KIND.get(kind)
    key = spec.feature_figure if spec is not None else None
    value = figures.get(key) if key else None
    return str(value) if value not in (None, "") else None


def solves_entry(template: str) -> str:
    """An offer key template as the docs write it: ``integration:{integration}`` → ``integration:<integration>``."""
    return template.replace("{", "<").replace("}", ">")


def trigger_table(entries: Iterable[tuple[TriggerSpec[Any], TriggerSettings]], events: EventNames) -> str:
    """The docs' trigger table (docs/engine.md) for these triggers and settings, as Markdown."""
    lines = ["| kind | motion | fires when | figures |", "|---|---|---|---|"]
    for spec, settings in entries:
        figures = ", ".join(spec.figures)
        motion = spec.motion.replace("_", "-")
        lines.append(f"| `{spec.kind}` | {motion} | {spec.describe(settings, events)} | {figures} |")
    return "\n".join(lines)


def builtin_table() -> str:
    """:func:`trigger_table` of the built-ins with their default settings (docs/engine.md, "Triggers")."""
    return trigger_table(((spec, spec.settings()) for spec in BUILTIN), EventNames())
