"""The built-in triggers, one module each, every one exporting ``SPEC`` (:class:`~outreach.engine.triggers.spec.TriggerSpec`).

The registry finds them by listing this package: adding a trigger is one new module here, its tests in
``tests/engine/triggers/`` and its events in the demo generator.
"""
