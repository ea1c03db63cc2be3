"""Errors shown to users.

Every error raised on purpose by the library is an :class:`OutreachError`. The CLI and the web app turn it
into one readable line (plus a hint) instead of a traceback; anything else is a bug and re-raises.
"""

from __future__ import annotations

from pathlib import Path


class OutreachError(Exception):
    """A problem the user can fix. ``str(error)`` is the one-line message; ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DataError(OutreachError):
    """Bad input data: names the file, the line or row, and the field."""

    exit_code = 2

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = str(path)
        if line is not None:
            where += f":{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {problem}", hint=hint)


class InputError(OutreachError):
    """A bad or missing value the user gave: a command-line argument or option, a form field (exit 2)."""

    exit_code = 2


class ConfigError(OutreachError):
    """Bad configuration: settings, rules, catalog policy, prompt front-matter, sequences."""

    exit_code = 2


class NotFoundError(OutreachError):
    """A named thing (account, draft, template, user) does not exist: the name given is bad input."""

    exit_code = 2


class ConflictError(OutreachError):
    """Someone else changed the record first (optimistic concurrency) or the state does not allow the action."""

    exit_code = 1


class PermissionDeniedError(OutreachError):
    """The current user's role does not allow the action."""

    exit_code = 1


class ProviderError(OutreachError):
    """An LLM provider failed in a way retries cannot fix (bad key, insufficient quota, model not found)."""

    exit_code = 1
