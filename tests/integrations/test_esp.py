"""ESP webhooks in: SendGrid (signed Event Webhook), Postmark (Basic credentials) and Amazon SES through SNS
(signature verified) land in suppression and engagement. Payloads are the providers' documented examples; the
signatures are made here with test keys, because only the providers hold theirs."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from outreach.application import Application
from outreach.sending.tables import EnrollmentRow, MailEventRow, OutboxRow, SuppressionRow
from outreach.settings import Settings
from outreach.web.app import create_app
from tests.integrations.cassettes import cassette
from tests.review_world import ReviewWorld
from tests.sequencing import START, build_world, make_setup

TOPIC = "arn:aws:sns:us-east-1:123456789012:outreach-ses"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[ReviewWorld]:
    built = build_world(sqlite_url, tmp_path)
    yield built
    built.close()


def _client(url: str, tmp_path: Path, **settings: Any) -> tuple[TestClient, Application]:
    application = Application.from_settings(Settings(home=tmp_path, database_url=url, **settings))
    return TestClient(create_app(application)), application


def _suppressed(application: Application) -> dict[str, str]:
    with application.sessions() as session:
        return {row.email: row.reason for row in session.scalars(select(SuppressionRow))}


def _events(application: Application) -> list[tuple[str, str | None, str]]:
    with application.sessions() as session:
        return [(r.kind, r.email, r.source) for r in session.scalars(select(MailEventRow).order_by(MailEventRow.id))]


# ---------------------------------------------------------------------------------------------- SendGrid


def _sendgrid_events(message_id: str) -> list[dict[str, Any]]:
    """SendGrid's documented Event Webhook example, one address per event (docs: "Event Webhook Reference")."""
    common = {"timestamp": 1763978400, "category": "expansion", "sg_message_id":
              "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000"}
    return [
        {**common, "email": "processed@example.com", "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
         "event": "processed", "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A=="},
        {**common, "email": "deferred@example.com", "event": "deferred", "sg_event_id": "deferredEvent1=",
         "response": "400 try again later", "attempt": "5"},
        {**common, "email": "dana@acme.example", "smtp-id": message_id, "event": "delivered",
         "sg_event_id": "deliveredEvent1=", "response": "250 OK"},
        {**common, "email": "open@example.com", "event": "open", "sg_event_id": "openEvent1=",
         "useragent": "Mozilla/4.0", "ip": "255.255.255.255"},
        {**common, "email": "click@example.com", "event": "click", "sg_event_id": "clickEvent1=",
         "url": "https://app.ledgerly.example/upgrade"},
        {**common, "email": "dana@acme.example", "smtp-id": message_id, "event": "bounce",
         "sg_event_id": "bounceEvent1=", "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        {**common, "email": "blocked@example.com", "event": "bounce", "sg_event_id": "blockedEvent1=",
         "reason": "550 blocked", "status": "5.0.0", "type": "blocked"},
        {**common, "email": "dropped@example.com", "event": "dropped", "sg_event_id": "droppedEvent1=",
         "reason": "Bounced Address", "status": "5.0.0"},
        {**common, "email": "spam@example.com", "event": "spamreport", "sg_event_id": "spamEvent1="},
        {**common, "email": "unsub@example.com", "event": "unsubscribe", "sg_event_id": "unsubEvent1="},
        {**common, "email": "group@example.com", "event": "group_unsubscribe", "sg_event_id": "groupEvent1=",
         "asm_group_id": 10},
    ]


def test_sendgrid_signed_events_suppress_and_end_the_enrollment(world: ReviewWorld, tmp_path: Path,
                                                                sqlite_url: str) -> None:
    setup = make_setup(world, tmp_path)
    enrollment_id = setup.approve_and_enroll("acme")
    setup.scheduler.run_until(START + timedelta(days=4, hours=4), setup.clock)
    with world.factory() as session:
        outbox = session.scalar(select(OutboxRow).where(OutboxRow.account_id == "acme"))
        assert outbox is not None and outbox.message_id
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    client, application = _client(sqlite_url, tmp_path, sendgrid_webhook_public_key=public)
    body = json.dumps(_sendgrid_events(outbox.message_id)).encode()
    stamp = "1763978460"
    signature = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {"X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
               "Content-Type": "application/json"}
    tampered = client.post("/webhooks/sendgrid", content=body.replace(b"spam@", b"maps@"), headers=headers)
    assert tampered.status_code == 401 and _events(application) == []
    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"received": 8, "recorded": 8, "duplicates": 0, "ignored": 3, "suppressed": 4}
    assert _suppressed(application) == {"dana@acme.example": "hard_bounce", "spam@example.com": "complaint",
                                        "unsub@example.com": "unsubscribe", "group@example.com": "unsubscribe"}
    kinds = [kind for kind, _, source in _events(application) if source == "sendgrid"]
    assert kinds == ["delivered", "click", "bounce", "soft_bounce", "soft_bounce", "complaint", "unsubscribe",
                     "unsubscribe"]
    with application.sessions() as session:
        bounce = session.scalar(select(MailEventRow).where(MailEventRow.kind == "bounce"))
        assert bounce is not None and bounce.enrollment_id == enrollment_id  # matched by our Message-ID
    assert client.post("/webhooks/sendgrid", content=body, headers=headers).json()["duplicates"] == 8
    setup.scheduler.run_until(START + timedelta(days=10), setup.clock)
    with world.factory() as session:
        row = session.get(EnrollmentRow, enrollment_id)
        assert row is not None and (row.status, row.exit_reason) == ("exited", "hard_bounce")


# ---------------------------------------------------------------------------------------------- Postmark

POSTMARK = [
    {"RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807, "Type": "HardBounce",
     "TypeCode": 1, "Name": "Hard bounce", "Tag": "Test", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
     "Metadata": {"a_key": "a_value"}, "ServerID": 23, "Description": "The server was unable to deliver your "
     "message (ex: unknown user, mailbox not found).", "Details": "Test bounce details", "Email": "john@example.com",
     "From": "sender@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True,
     "Inactive": True, "CanActivate": True, "Subject": "Test subject"},
    {"RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775808, "Type": "SoftBounce",
     "TypeCode": 4096, "Name": "Soft bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79484",
     "Email": "soft@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z"},
    {"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
     "TypeCode": 512, "Name": "Spam complaint", "Tag": "Test", "MessageID": "00000000-0000-0000-0000-000000000000",
     "ServerID": 1234, "Description": "", "Details": "Test spam complaint details", "Email": "spam@example.com",
     "From": "sender@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z"},
    {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
     "MessageID": "00000000-0000-0000-0000-000000000001", "Recipient": "delivered@example.com",
     "Tag": "welcome-email", "DeliveredAt": "2021-02-21T16:34:52Z", "Details": "Test delivery webhook details"},
    {"RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000002", "ServerID": 23,
     "MessageStream": "outbound", "ChangedAt": "2020-02-01T10:53:34.416071Z", "Recipient": "optout@example.com",
     "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression", "Tag": "my-tag"},
    {"RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000003", "ServerID": 23,
     "MessageStream": "outbound", "ChangedAt": "2020-02-02T10:53:34.416071Z", "Recipient": "back@example.com",
     "Origin": "Customer", "SuppressSending": False, "SuppressionReason": None},
]


def test_postmark_webhooks_with_basic_credentials(tmp_path: Path, sqlite_url: str) -> None:
    client, application = _client(sqlite_url, tmp_path, postmark_webhook_user="postmark",
                                  postmark_webhook_password="s3cret")
    assert client.post("/webhooks/postmark", json=POSTMARK[0], auth=("postmark", "wrong")).status_code == 401
    for payload in POSTMARK:
        assert client.post("/webhooks/postmark", json=payload, auth=("postmark", "s3cret")).status_code == 200
    assert _suppressed(application) == {"john@example.com": "hard_bounce", "spam@example.com": "complaint",
                                        "optout@example.com": "unsubscribe"}
    assert [kind for kind, _, _ in _events(application)] == ["bounce", "soft_bounce", "complaint", "delivered",
                                                             "unsubscribe"]
    bad = client.post("/webhooks/postmark", json={"Type": "HardBounce"}, auth=("postmark", "s3cret"))
    assert bad.status_code == 400


# ---------------------------------------------------------------------------------------------- SES via SNS


@functools.cache
def _sns_key() -> tuple[rsa.RSAPrivateKey, str]:
    """A key pair made for this run and its self-signed certificate (PEM), which the cassette serves as SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (outreach test certificate)")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + timedelta(days=3650)).sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _sns(kind: str, fields: dict[str, Any], version: str = "1") -> dict[str, Any]:
    """An SNS message signed the way SNS signs (``Key\\nValue\\n`` for the type's fields), with the run's key."""
    key, _ = _sns_key()
    message = {"Type": kind, "TopicArn": TOPIC, "Timestamp": "2016-01-27T14:59:38.237Z",
               "SignatureVersion": version, "SigningCertURL": CERT_URL, **fields}
    order = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type") if kind == "Notification" else \
        ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    text = "".join(f"{name}\n{message[name]}\n" for name in order if name in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), digest)).decode()
    return message


MAIL = {"timestamp": "2016-01-27T14:05:45.000Z", "source": "maya@ledgerly.example",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/ledgerly.example", "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012", "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": ["jane@example.com"], "headersTruncated": False,
        "commonHeaders": {"from": ["Maya Chen <maya@ledgerly.example>"], "date": "Wed, 27 Jan 2016 14:05:45 +0000",
                          "to": ["Jane Doe <jane@example.com>"], "messageId": "custom-message-ID", "subject": "Hello"}}
SES = [
    {"notificationType": "Bounce", "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [
            {"emailAddress": "jane@example.com", "action": "failed", "status": "5.1.1",
             "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
        "timestamp": "2016-01-27T14:59:38.237Z", "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
        "remoteMtaIp": "127.0.2.0", "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"}, "mail": MAIL},
    {"notificationType": "Bounce", "bounce": {
        "bounceType": "Transient", "bounceSubType": "MailboxFull", "bouncedRecipients": [
            {"emailAddress": "full@example.com"}], "timestamp": "2016-01-27T14:59:38.237Z"}, "mail": MAIL},
    {"notificationType": "Complaint", "complaint": {
        "userAgent": "AnyCompany Feedback Loop (V0.01)", "complainedRecipients": [{"emailAddress": "richard@example.com"}],
        "complaintFeedbackType": "abuse", "arrivalDate": "2016-01-27T14:59:38.237Z",
        "timestamp": "2016-01-27T14:59:38.237Z", "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"},
     "mail": MAIL},
    {"notificationType": "Delivery", "mail": MAIL, "delivery": {
        "timestamp": "2016-01-27T14:59:38.237Z", "recipients": ["jane@example.com"], "processingTimeMillis": 546,
        "reportingMTA": "a8-70.smtp-out.amazonses.com", "smtpResponse": "250 ok:  Message 64111812 accepted",
        "remoteMtaIp": "127.0.2.0"}},
]


def test_ses_through_sns(tmp_path: Path, sqlite_url: str) -> None:
    client, application = _client(sqlite_url, tmp_path, ses_topic_arns=f"arn:aws:sns:eu-west-1:1:other,{TOPIC}")
    confirmation = _sns("SubscriptionConfirmation", {
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37fb687f5d51e6e2425f004ae",
        "Message": f"You have chosen to subscribe to the topic {TOPIC}. To confirm the subscription, visit the "
                   "SubscribeURL included in this message.",
        "SubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"
                        "&Token=2336412f37fb687f5d51e6e2425f004ae"})
    notifications = [_sns("Notification", {"MessageId": f"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32{i}",
                                            "Message": json.dumps(ses)}, version="2" if i % 2 else "1")
                     for i, ses in enumerate(SES)]
    with cassette("test_esp", "test_ses_through_sns.yaml", fill={"SNS_CERTIFICATE": _sns_key()[1]}) as played:
        assert client.post("/webhooks/ses", json=confirmation).json() == {"confirmed": True}
        forged = {**notifications[0], "Message": notifications[0]["Message"].replace("jane@", "joan@")}
        assert client.post("/webhooks/ses", json=forged).status_code == 401
        for message in notifications:
            assert client.post("/webhooks/ses", json=message).status_code == 200
    assert played.all_played  # the certificate was fetched once, then cached
    assert _suppressed(application) == {"jane@example.com": "hard_bounce", "richard@example.com": "complaint"}
    assert [kind for kind, _, _ in _events(application)] == ["bounce", "soft_bounce", "complaint", "delivered"]
    other = {**notifications[0], "TopicArn": "arn:aws:sns:us-east-1:999999999999:elsewhere"}
    assert client.post("/webhooks/ses", json=other).status_code == 401
    outside = {**notifications[0], "SigningCertURL": "https://attacker.example/cert.pem"}
    assert client.post("/webhooks/ses", json=outside).status_code == 401
