"""Thresholds and rules: when a trigger fires, how health is scored, when the gate blocks, how offers are sized.

Every threshold, weight and window the engine uses is a field here, with its default; nothing is a literal in
the SQL. ``outreach/defaults/rules.yaml`` writes every one of them out (a test checks it equals the model), and
docs/engine.md explains them. A project overrides any subset with ``rules.yaml`` in its data directory or
``--rules FILE``; the catalog's ``policy.thresholds`` may override single values with dotted keys
(``<kind>.<setting>: value``, or ``<section>.<setting>``).

The ``triggers`` section has one entry per built-in trigger, each the settings model of its spec
(:mod:`outreach.engine.triggers.builtin`); ``custom_triggers`` adds triggers without code
(:mod:`outreach.engine.triggers.custom`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from outreach import bundled
from outreach.engine.catalog import Catalog, load_catalog
from outreach.engine.triggers.custom import CustomTrigger, compile_trigger
from outreach.engine.triggers.registry import BUILTIN, builtin_kinds
from outreach.engine.triggers.spec import KIND_PATTERN, EventNames, StrictModel, TriggerSettings, TriggerSpec
from outreach.errors import ConfigError, DataError
from outreach.yamlfile import _line_of, deep_merge, parse_yaml, validate_yaml

DEFAULT_RULES_PATH = bundled.RULES

__all__ = ["EventNames", "ProjectRules", "Rules", "load_project_rules", "load_rules"]


class TriggerSection(StrictModel):
    """``triggers``: one entry per built-in kind (added from the registry below) and ``disabled``."""

    disabled: list[str] = Field(
        default_factory=list, description="Trigger kinds switched off (built-in or custom; unknown kinds are an error)."
    )


if TYPE_CHECKING:
    Triggers = TriggerSection
else:
    Triggers = create_model(
        "Triggers",
        __base__=TriggerSection,
        **{spec.kind: (spec.settings, Field(default_factory=spec.settings)) for spec in BUILTIN},
    )


class HealthWeights(StrictModel):
    activation: float = 20
    usage_trend: float = 25
    champion: float = 15
    support: float = 15
    nps: float = 10
    adoption: float = 15

    @property
    def total(self) -> float:
        """The weights' sum (1 when all are zero, so a score stays defined)."""
        return (self.activation + self.usage_trend + self.champion + self.support + self.nps + self.adoption) or 1.0


class HealthRules(StrictModel):
    weights: HealthWeights = HealthWeights()
    green_min: int = Field(default=70, ge=0, le=100)
    yellow_min: int = Field(default=40, ge=0, le=100)
    activity_window_days: int = Field(
        default=30, gt=0, description="Active users and features used are counted over this many days."
    )
    usage_floor: float = Field(
        default=0.5, ge=0, lt=1, description="Active users at this share of the window before score 0 (1 at parity)."
    )
    champion_recent_days: int = Field(default=7, ge=0, description="Champion seen within this many days: full score.")
    champion_stale_days: int = Field(default=30, gt=0, description="Not seen for this many days (or never): 0.")
    open_ticket_penalty: float = Field(default=0.15, ge=0, description="Support score lost per open ticket.")
    priority_ticket_penalty: float = Field(
        default=0.5, ge=0, description="Support score lost per open ticket with a blocking priority."
    )

    @model_validator(mode="after")
    def _champion_days(self) -> HealthRules:
        if self.champion_stale_days <= self.champion_recent_days:
            raise ValueError("champion_stale_days must be more than champion_recent_days")
        return self


class GateRules(StrictModel):
    onboarding_days: int = Field(default=60, ge=0)
    usage_drop_pct: float = Field(default=0.2, gt=0, le=1)
    champion_silent_days: int = Field(default=21, gt=0)
    contact_cooldown_days: int = Field(default=14, ge=0)
    block_on_open_priorities: list[str] = Field(default_factory=lambda: ["high", "urgent"])


class OfferRules(StrictModel):
    headroom: float = Field(default=0.2, ge=0, description="Extra capacity a recommended plan must leave.")
    seat_growth_pct: float = Field(default=0.2, ge=0, description="Growth a seat pack is sized for.")


class Rules(StrictModel):
    events: EventNames = EventNames()
    triggers: Triggers = Field(default_factory=Triggers)
    custom_triggers: dict[str, CustomTrigger] = Field(
        default_factory=dict, description="Triggers defined without code, by kind (docs/engine.md)."
    )
    health: HealthRules = HealthRules()
    gate: GateRules = GateRules()
    offers: OfferRules = OfferRules()
    evidence_cap: int = Field(default=5, gt=0, description="Evidence ids kept per signal.")
    strength_cap: float = Field(default=3.0, gt=0, description="A friction counts at most this far past its threshold.")

    def trigger_specs(self) -> list[tuple[TriggerSpec[Any], TriggerSettings]]:
        """Every trigger with its settings: the built-ins (registry order), then the custom ones."""
        found: list[tuple[TriggerSpec[Any], TriggerSettings]] = [
            (spec, spec.settings_in(self.triggers)) for spec in BUILTIN
        ]
        found += [(compile_trigger(kind, trigger), trigger) for kind, trigger in self.custom_triggers.items()]
        return found

    def enabled_triggers(self) -> list[tuple[TriggerSpec[Any], TriggerSettings]]:
        disabled = set(self.triggers.disabled)
        return [(spec, settings) for spec, settings in self.trigger_specs() if spec.kind not in disabled]

    def trigger_kinds(self) -> list[str]:
        return [*builtin_kinds(), *self.custom_triggers]


def _dotted(overrides: dict[str, float], custom: set[str]) -> dict[str, Any]:
    """``{"<kind>.<setting>": 10}`` → nested dict under ``triggers`` (``custom_triggers`` for a
    custom kind, or a top-level section)."""
    nested: dict[str, Any] = {}
    sections = set(Rules.model_fields)
    for key, value in overrides.items():
        parts = key.split(".")
        if parts[0] in custom:
            parts = ["custom_triggers", *parts]
        elif parts[0] not in sections:
            parts = ["triggers", *parts]
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
    return nested


class _RulesFile:
    """One rules file as read: its data and YAML node (for the line of a later finding)."""

    def __init__(self, path: Path, data: dict[str, Any], node: yaml.Node | None) -> None:
        self.path, self.data, self.node = path, data, node

    def error(self, location: tuple[str | int, ...], problem: str, hint: str | None = None) -> DataError:
        field = ".".join(str(part) for part in location)
        return DataError(self.path, problem, line=_line_of(self.node, location), field=field, hint=hint)


def _check_custom_kinds(file: _RulesFile) -> None:
    builtins = set(builtin_kinds())
    for kind in file.data.get("custom_triggers") or {}:
        if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
            raise file.error(
                ("custom_triggers", str(kind)), f"'{kind}' is not a snake_case name", hint="e.g. reports_shared"
            )
        if kind in builtins:
            raise file.error(
                ("custom_triggers", kind),
                f"'{kind}' is a built-in trigger",
                hint=f"tune it under triggers.{kind}, or give the custom trigger a name of its own",
            )


def _merge(merged: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Later files win; a custom trigger is replaced whole (each one is defined in one place)."""
    custom = {**(merged.get("custom_triggers") or {}), **(data.get("custom_triggers") or {})}
    result = deep_merge(merged, {key: value for key, value in data.items() if key != "custom_triggers"})
    if custom:
        result["custom_triggers"] = custom
    return result


def _check_disabled(rules: Rules, files: list[_RulesFile]) -> None:
    known = rules.trigger_kinds()
    source = next((f for f in reversed(files) if "disabled" in (f.data.get("triggers") or {})), None)
    for position, kind in enumerate(rules.triggers.disabled):
        if kind in known:
            continue
        close = difflib.get_close_matches(kind, known, n=1)
        problem = f"unknown trigger kind '{kind}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        hint = "known kinds: " + ", ".join(known)
        if source is None:
            raise ConfigError(f"triggers.disabled: {problem}", hint=hint)
        raise source.error(("triggers", "disabled", position), problem, hint=hint)


def load_rules(*paths: Path | None, policy_overrides: dict[str, float] | None = None) -> Rules:
    """Defaults, then each existing file in ``paths`` (later wins), then the catalog policy's dotted overrides."""
    return _load(paths, policy_overrides)[0]


def _load(
    paths: tuple[Path | None, ...], policy_overrides: dict[str, float] | None
) -> tuple[Rules, list[_RulesFile]]:
    merged: dict[str, Any] = {}
    files: list[_RulesFile] = []
    for path in [path for path in paths if path is not None]:
        if not path.exists():
            raise ConfigError(f"{path}: rules file not found", hint="check --rules or OUTREACH_RULES_PATH")
        text = path.read_text(encoding="utf-8")
        data, node = parse_yaml(text, path)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise DataError(path, "rules file must be a mapping", line=1)
        file = _RulesFile(path, data, node)
        _check_custom_kinds(file)
        validate_yaml(Rules, text, path)  # reports bad fields with their line in the file that has them
        merged = _merge(merged, data)
        files.append(file)
    if policy_overrides:
        merged = deep_merge(merged, _dotted(policy_overrides, set(merged.get("custom_triggers") or {})))
    if not merged:
        return Rules(), files
    try:
        rules = Rules.model_validate(merged)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"catalog.yaml policy.thresholds: '{field}': {first['msg']}",
            hint=f"policy.thresholds keys are dotted rule names, e.g. {BUILTIN[0].kind}.weight: 0.5",
        ) from None
    _check_disabled(rules, files)
    return rules, files


def _check_catalog_solves(catalog: Catalog, path: Path, rules: Rules) -> None:
    """Every ``trigger:<kind>`` in the catalog's ``solves`` names a trigger these rules know."""
    known = rules.trigger_kinds()
    sections: list[tuple[str, list[list[str]]]] = [
        ("plans", [plan.solves for plan in catalog.plans]),
        ("addons", [addon.solves for addon in catalog.addons]),
    ]
    for section, solves_lists in sections:
        for index, solves in enumerate(solves_lists):
            for position, key in enumerate(solves):
                prefix, _, kind = key.partition(":")
                if prefix.lower() != "trigger" or kind.lower() in known:
                    continue
                location = (section, index, "solves", position)
                _, node = parse_yaml(path.read_text(encoding="utf-8"), path)
                close = difflib.get_close_matches(kind.lower(), known, n=1)
                raise DataError(
                    path,
                    f"'{key}' names no trigger" + (f" (did you mean 'trigger:{close[0]}'?)" if close else ""),
                    line=_line_of(node, location),
                    field=".".join(str(part) for part in location),
                    hint="trigger kinds: " + ", ".join(known),
                )


class TriggerRow(BaseModel):
    """One trigger as ``outreach rules check`` lists it."""

    kind: str
    motion: str
    source: str = Field(description="'built-in', or the rules file that defines the custom trigger.")
    enabled: bool
    thresholds: dict[str, Any]
    fires_when: str


@dataclass(frozen=True)
class ProjectRules:
    """The rules a data directory runs with, and where they came from."""

    rules: Rules
    files: tuple[Path, ...]
    catalog: Path | None = None
    custom_sources: dict[str, Path] = field(default_factory=dict)

    def trigger_rows(self) -> list[TriggerRow]:
        disabled = set(self.rules.triggers.disabled)
        return [
            TriggerRow(
                kind=spec.kind,
                motion=spec.motion,
                source=str(self.custom_sources.get(spec.kind, "built-in")),
                enabled=spec.kind not in disabled,
                thresholds=settings.model_dump(mode="json", exclude={"motion", "statement"}),
                fires_when=spec.describe(settings, self.rules.events),
            )
            for spec, settings in self.rules.trigger_specs()
        ]

    def summary(self) -> str:
        rows = self.trigger_rows()
        custom = sum(row.source != "built-in" for row in rows)
        off = sum(not row.enabled for row in rows)
        sources = ", ".join(str(path) for path in self.files) or "the built-in defaults only"
        catalog = f"; catalog {self.catalog} checked" if self.catalog else ""
        return (
            f"Rules OK: {len(rows)} triggers ({len(rows) - custom} built-in, {custom} custom), {off} disabled; "
            f"rules from {sources}{catalog}"
        )


def load_project_rules(
    data_dir: Path | None,
    rules_path: Path | None = None,
    *,
    catalog: Catalog | None = None,
    workspace: Path | None = None,
) -> ProjectRules:
    """Defaults < the workspace's ``rules.yaml`` (``workspace``) < ``<data dir>/rules.yaml`` < ``rules_path`` < the
    catalog's ``policy.thresholds``; the catalog's ``trigger:<kind>`` solves are checked against the result.
    ``catalog`` is the data directory's, when already loaded."""
    catalog_path = data_dir / "catalog.yaml" if data_dir is not None else None
    if catalog is None and catalog_path is not None:
        catalog = load_catalog(catalog_path)
    local = data_dir / "rules.yaml" if data_dir is not None else None
    rules, files = _load(
        (workspace, local if local is not None and local.exists() else None, rules_path),
        catalog.policy.thresholds if catalog is not None else None,
    )
    if catalog is not None and catalog_path is not None:
        _check_catalog_solves(catalog, catalog_path, rules)
    sources = {kind: file.path for file in files for kind in file.data.get("custom_triggers") or {}}
    return ProjectRules(rules, tuple(file.path for file in files), catalog_path, sources)


def default_rules_yaml() -> str:
    return DEFAULT_RULES_PATH.read_text(encoding="utf-8")
