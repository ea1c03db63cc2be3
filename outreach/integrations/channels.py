"""The channels notifications go out through: each registers itself (built-ins the same way as additions), and
the helpers they share. :mod:`outreach.integrations.notify` decides what goes where and when."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from sqlalchemy.orm import Session

from outreach.integrations.tables import NotificationRow
from outreach.settings import Settings

KINDS = ("ready", "approved", "sent", "held", "reply")


class DeliveryError(Exception):
    """A delivery that failed. ``transient``: worth retrying (network, 429, 5xx); ``retry_after`` in seconds."""

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class Channel(Protocol):
    name: str
    kinds: tuple[str, ...]

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        """Send one notification; the other side's id for what it created (or None). Raises DeliveryError."""
        ...


ChannelFactory = Callable[[Settings], "Channel | None"]
CHANNELS: dict[str, ChannelFactory] = {}


def register_channel(name: str) -> Callable[[ChannelFactory], ChannelFactory]:
    """Channels register themselves (built-ins the same way an addition would)."""

    def add(factory: ChannelFactory) -> ChannelFactory:
        CHANNELS[name] = factory
        return factory

    return add


def http_error(status: int, body: str, headers: Mapping[str, str] | None = None, *, service: str) -> DeliveryError:
    """A DeliveryError for an HTTP answer: 429 and 5xx are transient (429 with its Retry-After)."""
    retry_after: float | None = None
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                retry_after = float(value)
            except ValueError:
                retry_after = None
    transient = status == 429 or status >= 500
    return DeliveryError(f"{service} answered {status}: {body[:300]}", transient=transient, retry_after=retry_after)


def signed_headers(secret: str | None, body: bytes, timestamp: int) -> dict[str, str]:
    """The outbound webhook's signature: HMAC-SHA256 over ``"<timestamp>.<body>"`` (replays show an old time)."""
    if not secret:
        return {}
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Outreach-Signature": f"sha256={mac}"}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
