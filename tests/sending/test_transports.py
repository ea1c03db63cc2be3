"""Messages carry threading, unsubscribe (RFC 8058) and CAN-SPAM parts; SMTP delivery to a real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from outreach.sending.transports import (
    OutboxTransport,
    OutgoingEmail,
    SmtpTransport,
    build_message,
    thread_subject,
)
from outreach.settings import Settings

EMAIL = OutgoingEmail(
    idempotency_key="enr1-step3", message_id="<m2@ledgerly.example>", sender="maya@ledgerly.example",
    sender_name="Maya Chen", recipient="dana@acme.example", recipient_name="Dana", subject="Re: Reports limit",
    body="Hi Dana,\n\nA short follow-up.\n\nMaya", date=datetime(2026, 11, 24, 8, tzinfo=UTC),
    in_reply_to="<m1@ledgerly.example>", references=("<m1@ledgerly.example>",),
    unsubscribe_https="https://app.ledgerly.example/unsubscribe/tok123",
    unsubscribe_mailto="mailto:unsubscribe@ledgerly.example?subject=unsubscribe%20tok123",
    postal_address="Ledgerly Inc., 1 Main St, Springfield, USA", company="Ledgerly", list_id="upsell.ledgerly.example",
)


def test_message_headers_and_parts() -> None:
    message = build_message(EMAIL)
    assert message["Message-ID"] == "<m2@ledgerly.example>"
    assert message["In-Reply-To"] == "<m1@ledgerly.example>" and message["References"] == "<m1@ledgerly.example>"
    assert message["List-Unsubscribe"] == ("<mailto:unsubscribe@ledgerly.example?subject=unsubscribe%20tok123>, "
                                           "<https://app.ledgerly.example/unsubscribe/tok123>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "1 Main St, Springfield" in text.get_content() and "unsubscribe here" in text.get_content()
    assert "1 Main St, Springfield" in html.get_content() and 'href="https://app.ledgerly.example/unsubscribe/tok123"' \
        in html.get_content()
    assert thread_subject("Re: RE: Reports limit") == "Re: Reports limit"


def test_outbox_transport_writes_complete_eml_files(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path)
    assert transport.delivered("enr1-step3") is False
    transport.send("enr1-step3", build_message(EMAIL))
    files = transport.files("enr1-step3")
    assert len(files) == 1 and transport.delivered("enr1-step3") is True
    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<m2@ledgerly.example>"
    assert not list(tmp_path.glob("*.part"))


class Collector(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[bytes] = []

    def handle_message(self, message: object) -> None:
        self.messages.append(message.as_bytes())  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_smtp_transport_delivers_to_a_real_smtp_server(smtp_server: tuple[Collector, int]) -> None:
    handler, port = smtp_server
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    SmtpTransport(settings).send("enr1-step3", build_message(EMAIL))
    assert len(handler.messages) == 1
    received = message_from_bytes(handler.messages[0], policy=policy.default)
    assert received["Message-ID"] == "<m2@ledgerly.example>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
