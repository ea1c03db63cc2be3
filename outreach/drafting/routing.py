"""Which prompt version each account drafts with, and which accounts an A/B test holds out.

An experiment splits a label of the prompt registry between versions (:class:`~outreach.drafting.registry.Split`);
each account lands in one arm by a hash of the experiment and its id, so the assignment never changes between
runs and is independent across experiments. The control share is never contacted: :meth:`TrafficRouter.held_out`
is the gate's ``held_out`` rule. Results per arm are in :mod:`outreach.metrics.experiments`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from outreach.drafting.registry import DEFAULT_LABEL, REGISTRY_FILE, Registry, Split
from outreach.drafting.templates import PromptTemplate, default_prompts_dir
from outreach.engine.data import Account

CONTROL = "control"


def bucket(experiment: str, account_id: str) -> float:
    """A uniform number in [0, 1) fixed by the experiment and the account (independent across experiments)."""
    digest = hashlib.sha256(f"{experiment}\x00{account_id}".encode()).hexdigest()
    return int(digest[:15], 16) / 16**15


def assign(split: Split, account_id: str) -> str:
    """The arm of ``account_id``: a version string, or :data:`CONTROL` for the held-out share."""
    point = bucket(split.experiment, account_id)
    control = split.control_pct / 100
    if point < control:
        return CONTROL
    scaled = (point - control) / (1 - control) if control < 1 else 0.0
    total = sum(split.weights.values())
    running = 0.0
    ordered = sorted(split.weights.items(), key=lambda item: int(item[0]))
    for version, weight in ordered:
        running += weight / total
        if scaled < running:
            return version
    return ordered[-1][0]


class TrafficRouter:
    """Per-account template choice and the control group for one label of a prompt registry.

    Plug :meth:`held_out` into :func:`outreach.engine.decisions.decide` and :meth:`template_for` into the drafting
    context (``open_workspace`` does both).
    """

    def __init__(self, registry: Registry, label: str = DEFAULT_LABEL) -> None:
        self.registry = registry
        self.label = label
        self._splits = {name: split for name in registry.data.templates
                        if (split := registry.split(name, label)) is not None}
        self._loaded: dict[tuple[str, str], PromptTemplate] = {}

    @classmethod
    def for_directory(cls, directory: Path | None, label: str | None = None) -> TrafficRouter | None:
        """A router when the directory's registry splits traffic on ``label``; None otherwise."""
        directory = directory or default_prompts_dir()
        if not (directory / REGISTRY_FILE).exists():
            return None
        router = cls(Registry.open(directory), label or DEFAULT_LABEL)
        return router if router._splits else None

    @property
    def splits(self) -> dict[str, Split]:
        return dict(self._splits)

    def arm(self, name: str, account_id: str) -> str | None:
        """The arm of an account for template ``name``; None when that template has no split."""
        split = self._splits.get(name)
        return assign(split, account_id) if split else None

    def held_out(self, account: Account) -> bool:
        """True when the account is in the control share of any running experiment: never contact it."""
        return any(assign(split, account.account_id) == CONTROL for split in self._splits.values())

    def template_for(self, template: PromptTemplate, account_id: str) -> PromptTemplate:
        """The version of ``template`` this account's arm uses (the template itself when it has no split)."""
        arm = self.arm(template.name, account_id)
        if arm is None or arm == CONTROL or arm == template.version:
            return template
        key = (template.name, arm)
        if key not in self._loaded:
            self._loaded[key] = self.registry.template(template.name, arm)
        return self._loaded[key]
