"""What a valid email address and link look like in the data contract.

Drafts quote the catalog's URLs and address the accounts' champions, so both are checked when the data is
read: an email address by `email-validator` (syntax only, no DNS), a link as an http(s) URL by pydantic's
URL parser. Checking 100k addresses with the library costs seconds, so the common form is recognised first
by :data:`EMAIL_FAST_FORM`, a regular expression that DuckDB applies too; tests/engine/test_values.py checks
that every address it accepts is one the library accepts.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A dot-atom local part and a domain of ASCII labels ending in a letters-only top-level domain: a subset of
# what email-validator accepts, once the checks in :func:`email_fast_form` hold too. Written for both Python's
# ``re`` and DuckDB's RE2.
EMAIL_FAST_FORM = rf"{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+[A-Za-z]{{2,63}}"
# email-validator refuses these top-level domains (RFC 6761 and friends) and addresses longer than these.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64

_email_fast_form = re.compile(EMAIL_FAST_FORM)


def email_fast_form(text: str) -> bool:
    """True when ``text`` is an email address in the common form every reader here accepts outright."""
    local, _, domain = text.partition("@")
    return (
        len(text) <= MAX_EMAIL_LENGTH
        and len(local) <= MAX_LOCAL_PART_LENGTH
        and "--" not in domain
        and domain.rpartition(".")[2].lower() not in SPECIAL_USE_DOMAINS
        and _email_fast_form.fullmatch(text) is not None
    )


def email_problem(text: str) -> str | None:
    """Why ``text`` is not an email address a message could be sent to, or None when it is one."""
    return None if email_fast_form(text) else _validated_email_problem(text)


@lru_cache(maxsize=4096)
def _validated_email_problem(text: str) -> str | None:
    import email_validator  # only for the unusual forms; importing it costs more than the common check

    try:
        email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        reason = str(error).rstrip(".")
        return f"'{text}' is not an email address ({reason[:1].lower()}{reason[1:]})"
    return None


@lru_cache(maxsize=256)
def http_url_problem(text: str) -> str | None:
    """Why ``text`` is not an absolute http(s) URL with a host, or None when it is one."""
    from pydantic import HttpUrl, TypeAdapter, ValidationError

    if any(char.isspace() or not char.isprintable() for char in text):
        return f"'{text}' is not an http(s) URL (it contains whitespace or control characters)"
    try:
        TypeAdapter(HttpUrl).validate_python(text)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Input should be a valid URL, ")
        return f"'{text}' is not an http(s) URL ({reason})"
    return None
