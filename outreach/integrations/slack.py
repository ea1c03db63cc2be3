"""Slack: a message to the account owner when an account becomes ready, and to the team when a send is held or
a recipient replies.

Two ways in, through ``slack_sdk`` with its own retries off (tenacity in :mod:`outreach.integrations.notify` is
the one retry layer): an incoming webhook (``OUTREACH_SLACK_WEBHOOK_URL``: one channel; the owner is named by
email) or a bot token (``OUTREACH_SLACK_BOT_TOKEN`` with ``chat:write`` and ``users:read.email``: a direct
message to the owner found by email, else ``OUTREACH_SLACK_CHANNEL``).
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.orm import Session

from outreach.integrations.channels import DeliveryError, http_error, register_channel
from outreach.integrations.tables import NotificationRow
from outreach.settings import Settings


def message_text(kind: str, payload: dict[str, Any]) -> str:
    """The message for one notification (plain text with Slack's mrkdwn; names are customer data, so no links
    are built from them)."""
    account = payload.get("account") or {}
    name = f"*{_plain(account.get('name') or account.get('account_id') or 'an account')}*"
    link = f" <{payload['draft_url']}|Review draft #{payload['draft_id']}>" if payload.get("draft_url") else ""
    if kind == "ready":
        offer = payload.get("offer") or {}
        owner = account.get("owner_email")
        lines = [f"{name} is ready for {str(payload.get('motion') or 'expansion').replace('_', '-')}"
                 + (f" (owner {owner})" if owner else "") + "."]
        if payload.get("friction"):
            lines.append(f"Friction: {_plain(payload['friction'])}")
        if offer:
            lines.append(f"Offer: {_plain(offer.get('name', ''))} (${offer.get('price_monthly', 0):,.0f}/mo)")
        return "\n".join(lines) + link
    if kind == "held":
        return (f"A send to {payload.get('recipient')} at {name} is held: {_plain(payload.get('reason') or '')}. "
                f"Release or stop it: `outreach sequences release {payload.get('enrollment_id')}`.") + link
    if kind == "reply":
        snippet = _plain(payload.get("snippet") or "")
        return f"{payload.get('email')} at {name} replied" + (f": “{snippet}”" if snippet else ".") + link
    return f"{kind} for {name}" + link


def _plain(text: str) -> str:
    """Customer text with Slack's control characters escaped, so it cannot mention @channel or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackWebhook:
    name: str = "slack"
    kinds: tuple[str, ...] = ("ready", "held", "reply")

    def __init__(self, url: str) -> None:
        self.client = WebhookClient(url, timeout=10, retry_handlers=[])

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        try:
            response = self.client.send(text=message_text(row.kind, row.payload))
        except (SlackRequestError, OSError) as error:
            raise DeliveryError(f"Slack webhook: {error}", transient=True) from None
        if response.status_code != 200:
            raise http_error(response.status_code, str(response.body), response.headers, service="Slack")
        return None


class SlackBot:
    name: str = "slack"
    kinds: tuple[str, ...] = ("ready", "held", "reply")

    def __init__(self, token: str, channel: str | None) -> None:
        self.client = WebClient(token=token, timeout=10, retry_handlers=[])
        self.channel = channel
        self._users: dict[str, str | None] = {}  # owner email -> Slack user id, looked up once per pass

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        owner = ((row.payload.get("account") or {}).get("owner_email")) if row.kind == "ready" else None
        target = self._user(owner) if owner else None
        target = target or self.channel
        if target is None:
            raise DeliveryError(f"no Slack user has the owner's email ({owner}) and OUTREACH_SLACK_CHANNEL is not set")
        try:
            response = self.client.chat_postMessage(channel=target, text=message_text(row.kind, row.payload))
        except SlackApiError as error:
            raise _api_error(error) from None
        except (SlackRequestError, OSError) as error:
            raise DeliveryError(f"Slack: {error}", transient=True) from None
        return str(response.get("ts") or "") or None

    def _user(self, email: str) -> str | None:
        if email not in self._users:
            self._users[email] = self._lookup(email)
        return self._users[email]

    def _lookup(self, email: str) -> str | None:
        try:
            response = self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if error.response.get("error") == "users_not_found":
                return None
            raise _api_error(error) from None
        except (SlackRequestError, OSError) as error:
            raise DeliveryError(f"Slack: {error}", transient=True) from None
        user = response.get("user") or {}
        return str(user.get("id")) if user.get("id") else None


def _api_error(error: SlackApiError) -> DeliveryError:
    response = error.response
    if response.status_code == 200:  # Slack's Web API answers 200 with {"ok": false, "error": ...}
        return DeliveryError(f"Slack: {response.get('error')}")
    return http_error(response.status_code, str(response.get("error") or response.data), response.headers,
                      service="Slack")


@register_channel("slack")
def _slack(settings: Settings) -> SlackWebhook | SlackBot | None:
    if settings.slack_bot_token is not None:
        return SlackBot(settings.slack_bot_token.get_secret_value(), settings.slack_channel)
    if settings.slack_webhook_url is not None:
        return SlackWebhook(settings.slack_webhook_url.get_secret_value())
    return None
