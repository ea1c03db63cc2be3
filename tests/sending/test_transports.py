"""Messages carry threading, unsubscribe (RFC 8058) and CAN-SPAM parts; SMTP delivery to a real server, and
every way a relay can refuse, fail or go silent classified by what it means for the message: retry (certainly
not sent), bounce (the recipient is refused), rejected (retrying will not help) or unknown (after DATA)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from outreach.sending.transports import (
    OutboxTransport,
    OutgoingEmail,
    SendError,
    SmtpTransport,
    build_message,
    thread_subject,
)
from outreach.settings import Settings
from tests.smtpsink import Sink, free_port

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


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


def smtp(port: int) -> SmtpTransport:
    return SmtpTransport(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_timeout_seconds=1))


def failure(transport: SmtpTransport) -> SendError:
    with pytest.raises(SendError) as raised:
        transport.send(EMAIL.idempotency_key, build_message(EMAIL))
    return raised.value


def test_smtp_transport_delivers_to_a_real_smtp_server(sink: Sink) -> None:
    smtp(sink.port).send("enr1-step3", build_message(EMAIL))
    assert [(r.key, r.recipient) for r in sink.handler.received] == [("enr1-step3", "dana@acme.example")]


@pytest.mark.parametrize(
    ("setup", "failure_kind", "relay", "code"),
    [
        ({"tempfail_next": 1}, "retry", False, 451),  # 4xx at RCPT: not sent, try again
        ({"tempfail_next": 1, "tempfail": "421 4.3.2 Shutting down"}, "retry", True, 421),  # the relay is leaving
        ({"refuse": {"dana@acme.example": "550 5.1.1 <dana@acme.example>: no such user"}}, "bounce", False, 550),
        ({"refuse": {"dana@acme.example": "550 Mailbox unavailable"}}, "bounce", False, 550),
        ({"refuse": {"dana@acme.example": "550 5.7.1 Relaying denied"}}, "rejected", False, 550),  # our relay setup
        ({"data_reply": "554 5.7.1 Message rejected as spam"}, "rejected", False, 554),
        ({"data_reply": "550 5.1.1 Recipient address rejected"}, "bounce", False, 550),
        ({"data_reply": "452 4.3.1 Insufficient system storage"}, "retry", False, 452),
    ],
)
def test_every_smtp_refusal_says_whether_to_retry_bounce_or_hold(sink: Sink, setup: dict[str, object],
                                                                  failure_kind: str, relay: bool, code: int) -> None:
    for name, value in setup.items():
        setattr(sink.handler, name, value)
    error = failure(smtp(sink.port))
    assert (error.failure, error.relay, error.code) == (failure_kind, relay, code), error.message
    assert sink.count() == 0  # none of these delivered anything


def test_a_connection_lost_after_data_is_an_unknown_outcome(sink: Sink) -> None:
    sink.handler.drop_after_data = {"dana@acme.example"}
    error = failure(smtp(sink.port))
    assert error.failure == "unknown" and "after DATA" in error.message
    assert sink.count() == 1  # and indeed the server has it: resending would duplicate


def test_an_unreachable_or_silent_relay_is_a_relay_failure_before_anything_was_sent() -> None:
    closed = free_port()
    refused = failure(smtp(closed))
    assert (refused.failure, refused.relay) == ("retry", True) and "connecting failed" in refused.message
    with socket.socket() as silent:  # accepts the connection (backlog) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        timed_out = failure(smtp(silent.getsockname()[1]))
    assert (timed_out.failure, timed_out.relay) == ("retry", True)
