"""The webhook registry's rules as pure functions: a new webhook, a patch applied, a
webhook made to match what a scenario declares."""

from __future__ import annotations

from dataclasses import replace

from mock_qrm.contract.errors import FieldErrors
from mock_qrm.contract.models import BasicAuthPatch, WebhookCreate, WebhookPatch
from mock_qrm.contract.rules import MAX_HEADER_LINE, MAX_REQUEST_HEAD, header_problems
from mock_qrm.server.domain.delivery import headers_for, message_id
from mock_qrm.server.domain.records import WebhookRecord


def checked_headers(webhook: WebhookRecord) -> WebhookRecord:
    """`webhook` if its request can be sent and read as it is, else `FieldErrors` by name.

    Its custom headers must not clash with the request's own, and the request's head
    must fit what receivers read (`MAX_HEADER_LINE`, `MAX_REQUEST_HEAD`): refused at
    creation, not left failing every attempt.
    """
    names = (name for name, _ in webhook.headers)
    problems = header_problems(names, basic_auth=webhook.auth_username is not None)
    if problems:
        raise FieldErrors(problems)
    if problems := head_problems(webhook):
        raise FieldErrors(problems)
    return webhook


_SAMPLE_ID = message_id()
"""Every message id has this length: the head of a request is measured with one."""
_CONTENT_LENGTH = len("Content-Length: 1048576\r\n\r\n")


def head_problems(webhook: WebhookRecord) -> dict[str, list[str]]:
    """Why receivers could not read the head of a request to `webhook`, keyed by field.

    Measured as sent, in UTF-8 bytes; the request line and `Host` are counted with the
    whole URL for each (a little more than they take).
    """
    custom = {name.lower() for name, _ in webhook.headers}
    problems: dict[str, list[str]] = {}
    total = len(f"POST {webhook.url} HTTP/1.1\r\nHost: {webhook.url}\r\n".encode())
    total += _CONTENT_LENGTH
    for name, value in headers_for(webhook, _SAMPLE_ID).items():
        line = len(f"{name}: {value}\r\n".encode())
        total += line
        if line - 2 > MAX_HEADER_LINE:
            field = f"headers.{name}" if name.lower() in custom else "basicAuth"
            problems[field] = [
                f"The {name} header would be {line - 2:,} bytes; receivers read at most"
                f" {MAX_HEADER_LINE:,} of one header line"
            ]
    if not problems and total > MAX_REQUEST_HEAD:
        problems["headers"] = [
            f"The request's headers would be {total:,} bytes; receivers read at most"
            f" {MAX_REQUEST_HEAD:,}: send fewer or shorter custom headers"
        ]
    return problems


def new_webhook(spec: WebhookCreate, webhook_id: int, now_ms: int) -> WebhookRecord:
    return checked_headers(
        WebhookRecord(
            id=webhook_id,
            name=spec.name,
            url=spec.url,
            events=tuple(spec.events),
            auth_username=spec.basic_auth.username if spec.basic_auth else None,
            auth_password=spec.basic_auth.password if spec.basic_auth else None,
            active=spec.active,
            created_at=now_ms,
            updated_at=now_ms,
            headers=tuple(spec.headers.items()),
            rate_limit=spec.rate_limit,
        )
    )


def check_patch(patch: WebhookPatch) -> None:
    """Rules a patch breaks whatever the webhook: a mandatory field set to null."""
    changed = patch.model_fields_set
    for field in ("name", "url", "events", "active", "headers"):
        if field in changed and getattr(patch, field) is None:
            raise FieldErrors({field: ["must not be null"]})


def patched(current: WebhookRecord, patch: WebhookPatch, now_ms: int) -> WebhookRecord:
    """`current` with the fields the patch names; an omitted password keeps the stored one.

    Only fields named in the request change: a PATCH that does not name
    `active` never activates or deactivates.
    """
    check_patch(patch)
    changed = patch.model_fields_set
    updated = replace(current, updated_at=now_ms)
    if "name" in changed and patch.name is not None:
        updated = replace(updated, name=patch.name)
    if "url" in changed and patch.url is not None:
        updated = replace(updated, url=patch.url)
    if "events" in changed and patch.events is not None:
        updated = replace(updated, events=tuple(patch.events))
    if "active" in changed and patch.active is not None:
        updated = replace(updated, active=patch.active)
    if "headers" in changed and patch.headers is not None:
        updated = replace(updated, headers=tuple(patch.headers.items()))
    if "rate_limit" in changed:
        updated = replace(updated, rate_limit=patch.rate_limit)
    if "basic_auth" in changed:
        if patch.basic_auth is None:
            updated = replace(updated, auth_username=None, auth_password=None)
        else:
            password = patch.basic_auth.password or current.auth_password
            if password is None:
                raise FieldErrors({"basicAuth.password": ["Password is required"]})
            updated = replace(
                updated, auth_username=patch.basic_auth.username, auth_password=password
            )
    return checked_headers(updated)


def declared(current: WebhookRecord, spec: WebhookCreate) -> bool:
    """Whether `current` already is the webhook `spec` declares (its name aside)."""
    auth = None if spec.basic_auth is None else (spec.basic_auth.username, spec.basic_auth.password)
    return (
        current.url == spec.url
        and current.events == tuple(spec.events)
        and current.active == spec.active
        and current.basic_auth == auth
        and current.headers == tuple(spec.headers.items())
        and current.rate_limit == spec.rate_limit
    )


def to_match(spec: WebhookCreate) -> WebhookPatch:
    """The patch that makes a webhook what `spec` declares: every field named, so one left
    out of the declaration (basic auth, headers, a rate limit) is removed."""
    return WebhookPatch(
        name=spec.name,
        url=spec.url,
        events=spec.events,
        active=spec.active,
        headers=spec.headers,
        rate_limit=spec.rate_limit,
        basic_auth=None
        if spec.basic_auth is None
        else BasicAuthPatch(username=spec.basic_auth.username, password=spec.basic_auth.password),
    )
