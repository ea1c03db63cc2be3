"""Expansion triggers: which behaviours show the current package has become the constraint.

One :class:`~outreach.engine.triggers.spec.TriggerSpec` per trigger (:mod:`.builtin`, one module each, and
``custom_triggers`` from rules.yaml, :mod:`.custom`), collected by :mod:`.registry`; :mod:`.detection` runs them
all as one DuckDB statement. This package module stays empty so that importing a spec imports nothing else.
"""
