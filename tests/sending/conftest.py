"""Fixtures shared by the sending tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sending import mailbox


@pytest.fixture
def dovecot() -> Iterator[mailbox.Imap]:
    """A private Dovecot IMAP server with one mailbox (see :mod:`tests.sending.mailbox`)."""
    with mailbox.dovecot() as server:
        yield server
