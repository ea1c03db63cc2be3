"""The CRM: approved emails become a task on the account, sent ones are logged as an activity and close it.

``OUTREACH_CRM=hubspot`` (``hubspot-api-client``, a private app token with ``crm.objects.companies.read`` and
the tasks/emails write scopes) or ``salesforce`` (``simple-salesforce``, username + password + security token).
The account is found by the column ``hubspot_company_id`` / ``salesforce_account_id`` in accounts.csv when it
is there, else by the account's ``domain`` (HubSpot: the company's ``domain``; Salesforce: ``Website``). An
account the CRM does not have fails that notification with the reason; the send itself is never affected.

HubSpot: a task (``hs_task_status`` NOT_STARTED, associated with the company, association type 192) on approve;
on send an email engagement (``hs_email_direction`` EMAIL, status SENT, association type 186) and the task set
to COMPLETED. Salesforce: a ``Task`` (Not Started, ``WhatId`` the Account) on approve; on send a ``Task`` with
``TaskSubtype`` Email, Completed, and the first one completed.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.integrations.channels import DeliveryError, http_error, register_channel
from outreach.integrations.tables import NotificationRow
from outreach.settings import Settings

TASK_TO_COMPANY = 192  # HubSpot-defined association type ids
EMAIL_TO_COMPANY = 186


def _task_subject(payload: dict[str, Any]) -> str:
    account = payload.get("account") or {}
    return f"Send approved {str(payload.get('motion') or 'expansion').replace('_', '-')} email to " \
           f"{account.get('name') or account.get('account_id')}"


def _task_body(payload: dict[str, Any]) -> str:
    lines = [f"Subject: {payload.get('subject') or ''}", f"Approved by {payload.get('actor')}"]
    if payload.get("draft_url"):
        lines.append(f"Draft: {payload['draft_url']}")
    return "\n".join(lines)


def _approval_task(session: Session, channel: str, draft_id: int | None) -> str | None:
    """The task the approval of ``draft_id`` created in the CRM (to close it when the email goes out)."""
    if draft_id is None:
        return None
    return session.scalar(select(NotificationRow.external_id).where(
        NotificationRow.channel == channel, NotificationRow.kind == "approved", NotificationRow.draft_id == draft_id,
        NotificationRow.state == "done", NotificationRow.external_id.is_not(None),
    ).order_by(NotificationRow.id.desc()).limit(1))


def _stamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


class HubSpot:
    name: str = "hubspot"
    kinds: tuple[str, ...] = ("approved", "sent")

    def __init__(self, access_token: str) -> None:
        try:
            from hubspot import HubSpot as Client
        except ImportError:
            raise _missing("hubspot-api-client") from None
        self.client = Client(access_token=access_token, retry=None)

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        payload = row.payload
        company = self._company(payload.get("account") or {})
        if row.kind == "approved":
            return self._create("tasks", {
                "hs_timestamp": _stamp(payload.get("at")).isoformat(), "hs_task_subject": _task_subject(payload),
                "hs_task_body": _task_body(payload), "hs_task_status": "NOT_STARTED", "hs_task_priority": "MEDIUM",
                "hs_task_type": "EMAIL",
            }, company, TASK_TO_COMPANY)
        headers = {"from": {"email": payload.get("sender")}, "to": [{"email": payload.get("recipient")}]}
        email_id = self._create("emails", {
            "hs_timestamp": _stamp(payload.get("sent_at")).isoformat(), "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT", "hs_email_subject": payload.get("subject") or "",
            "hs_email_text": payload.get("body") or "", "hs_email_headers": _json(headers),
        }, company, EMAIL_TO_COMPANY)
        task = _approval_task(session, self.name, row.draft_id)
        if task:
            from hubspot.crm.objects.tasks import ApiException, SimplePublicObjectInput

            try:
                self.client.crm.objects.tasks.basic_api.update(
                    task, simple_public_object_input=SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"}))
            except ApiException as error:
                raise _hubspot_error(error) from None
        return email_id

    def _company(self, account: dict[str, Any]) -> str:
        extra = account.get("extra") or {}
        if extra.get("hubspot_company_id"):
            return str(extra["hubspot_company_id"])
        domain = account.get("domain")
        if not domain:
            raise DeliveryError(f"account {account.get('account_id')} has no hubspot_company_id column and no domain "
                                "to find its HubSpot company by")
        from hubspot.crm.companies import ApiException, Filter, FilterGroup, PublicObjectSearchRequest

        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name="domain", operator="EQ", value=domain)])],
            properties=["domain", "name"], limit=1)
        try:
            found = self.client.crm.companies.search_api.do_search(public_object_search_request=request)
        except ApiException as error:
            raise _hubspot_error(error) from None
        if not found.results:
            raise DeliveryError(f"no HubSpot company has the domain {domain} (account {account.get('account_id')})")
        return str(found.results[0].id)

    def _create(self, kind: str, properties: dict[str, Any], company: str, association: int) -> str:
        module = importlib.import_module(f"hubspot.crm.objects.{kind}")
        body = module.SimplePublicObjectInputForCreate(
            properties=properties,
            associations=[module.PublicAssociationsForObject(
                to=module.PublicObjectId(id=company),
                types=[module.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=association)],
            )],
        )
        api = getattr(self.client.crm.objects, kind).basic_api
        try:
            created = api.create(simple_public_object_input_for_create=body)
        except module.ApiException as error:
            raise _hubspot_error(error) from None
        return str(created.id)


def _missing(package: str) -> Exception:
    from outreach.errors import ConfigError

    return ConfigError(f"the CRM integration needs {package}", hint="pip install 'outreach[crm]'")


def _hubspot_error(error: Any) -> DeliveryError:
    status = int(getattr(error, "status", 0) or 0)
    headers = dict(getattr(error, "headers", None) or {})
    if status == 0:
        return DeliveryError(f"HubSpot: {error}", transient=True)
    return http_error(status, str(getattr(error, "body", "") or ""), headers, service="HubSpot")


def _json(value: Any) -> str:
    return json.dumps(value)


class Salesforce:
    name: str = "salesforce"
    kinds: tuple[str, ...] = ("approved", "sent")

    def __init__(self, username: str, password: str, security_token: str, domain: str) -> None:
        self.credentials = {"username": username, "password": password, "security_token": security_token,
                            "domain": domain}
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from simple_salesforce.api import Salesforce as Client
                from simple_salesforce.exceptions import SalesforceAuthenticationFailed
            except ImportError:
                raise _missing("simple-salesforce") from None

            try:
                self._client = Client(username=self.credentials["username"], password=self.credentials["password"],
                                      security_token=self.credentials["security_token"],
                                      domain=self.credentials["domain"])
            except SalesforceAuthenticationFailed as error:
                raise DeliveryError(f"Salesforce login failed: {error.message}") from None
            except OSError as error:
                raise DeliveryError(f"Salesforce login: {error}", transient=True) from None
        return self._client

    def deliver(self, row: NotificationRow, session: Session) -> str | None:
        _ = self.client  # logs in (or says what to install) first
        from simple_salesforce.exceptions import SalesforceError

        payload = row.payload
        try:
            account = self._account(payload.get("account") or {})
            if row.kind == "approved":
                created = self.client.Task.create({
                    "WhatId": account, "Subject": _task_subject(payload)[:255], "Description": _task_body(payload),
                    "Status": "Not Started", "Priority": "Normal",
                    "ActivityDate": _stamp(payload.get("at")).date().isoformat(),
                })
                return str(created["id"])
            sent = _stamp(payload.get("sent_at"))
            created = self.client.Task.create({
                "WhatId": account, "Subject": f"Email: {payload.get('subject') or ''}"[:255],
                "Description": f"To: {payload.get('recipient')}\nFrom: {payload.get('sender')}\n\n{payload.get('body') or ''}",
                "Status": "Completed", "Priority": "Normal", "TaskSubtype": "Email",
                "ActivityDate": sent.date().isoformat(),
            })
            task = _approval_task(session, self.name, row.draft_id)
            if task:
                self.client.Task.update(task, {"Status": "Completed"})
            return str(created["id"])
        except SalesforceError as error:
            raise http_error(int(error.status or 0), str(error.content), None, service="Salesforce") from None
        except OSError as error:
            raise DeliveryError(f"Salesforce: {error}", transient=True) from None

    def _account(self, account: dict[str, Any]) -> str:
        extra = account.get("extra") or {}
        if extra.get("salesforce_account_id"):
            return str(extra["salesforce_account_id"])
        domain = str(account.get("domain") or "")
        if not domain:
            raise DeliveryError(f"account {account.get('account_id')} has no salesforce_account_id column and no "
                                "domain to find its Salesforce Account by")
        from simple_salesforce.format import format_soql

        found = self.client.query(format_soql("SELECT Id FROM Account WHERE Website LIKE '%{:like}%' LIMIT 1",
                                              domain))
        records = found.get("records") or []
        if not records:
            raise DeliveryError(f"no Salesforce Account has a Website with {domain} (account {account.get('account_id')})")
        return str(records[0]["Id"])


@register_channel("hubspot")
def _hubspot(settings: Settings) -> HubSpot | None:
    if settings.crm != "hubspot":
        return None
    if settings.hubspot_access_token is None:
        from outreach.errors import ConfigError

        raise ConfigError("OUTREACH_CRM=hubspot needs OUTREACH_HUBSPOT_ACCESS_TOKEN",
                          hint="create a private app token in HubSpot (docs/integrations.md)")
    return HubSpot(settings.hubspot_access_token.get_secret_value())


@register_channel("salesforce")
def _salesforce(settings: Settings) -> Salesforce | None:
    if settings.crm != "salesforce":
        return None
    if not (settings.salesforce_username and settings.salesforce_password and settings.salesforce_security_token):
        from outreach.errors import ConfigError

        raise ConfigError("OUTREACH_CRM=salesforce needs OUTREACH_SALESFORCE_USERNAME, _PASSWORD and _SECURITY_TOKEN",
                          hint="see docs/integrations.md")
    return Salesforce(settings.salesforce_username, settings.salesforce_password.get_secret_value(),
                      settings.salesforce_security_token.get_secret_value(), settings.salesforce_domain)
