"""The checks of `mock-qrm check-receiver`: real QRM messages, judged from the journal.

Nothing here posts a webhook itself. The mock's own delivery engine sends every
message, through its HTTP API, and each check reads the journal's record of the
message's *first* attempt (a `retry_scheduled` delivery means it failed): that
is what QRM itself would judge. Waits for deliveries ride the live feed; the
receiver's calls back to QRM are read from `/_mock/api-calls`, which has no
feed, so those are polled at a modest interval.

Each check registers webhooks of its own and deletes them when it is done, which
also cancels QRM's automatic retries of its messages: a retry of one check's
message never lands in the middle of the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

from mock_qrm.client.http import QrmClient
from mock_qrm.client.labels import error_label, is_certificate_failure
from mock_qrm.client.matching import DeliveryMatch
from mock_qrm.client.mirror import FeedMirror
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.display import printable
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import ApiCall, Attempt, DeliveryDetail, Webhook

CREATED = "report.created"
FILE_READY = "report.file_ready"
REPORT_ROUTE = "GET /api/v1/reports/{id}"

CHECKS = (
    "acknowledges-200",
    "within-timeout",
    "duplicate-message",
    "file-ready",
    "basic-auth",
    "calls-back",
    "callback-retry",
    "burst",
)

FIRST_ATTEMPT_DONE = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.RETRY_SCHEDULED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELLED,
    }
)
"""A delivery in one of these states has finished its first attempt (or will never make one)."""

UNREACHABLE = frozenset({"connection_refused", "dns", "connection_error", "invalid_url", "tls"})
"""Attempt errors that mean QRM cannot talk to the receiver at all: the other checks would only repeat them."""

JOURNAL_MARGIN = 15.0
"""Seconds a wait for a first attempt allows beyond the receiver's timeout."""


class Result(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    result: Result
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CheckOptions:
    url: str
    """The receiver's webhook URL."""
    api_url: str
    """The QRM API base the receiver should call back (for the advice in the details)."""
    api_key: str | None = None
    basic_auth: tuple[str, str] | None = None
    callback_timeout: float = 30.0
    """How long `calls-back` waits for the call back; `callback-retry` waits twice as long."""
    burst: int = 20
    poll_interval: float = 0.2


@dataclass(frozen=True, slots=True)
class FirstAttempt:
    """A message's delivery and its first attempt (`None`: the journal holds none in time)."""

    delivery: DeliveryDetail | None
    attempt: Attempt | None

    @property
    def message_id(self) -> str:
        return "?" if self.delivery is None else self.delivery.message_id


def _ms(attempt: Attempt) -> str:
    if attempt.duration_ms is None:
        return ""
    if attempt.duration_ms >= 10_000:
        return f" in {attempt.duration_ms / 1000:.1f} s"
    return f" in {attempt.duration_ms} ms"


def _body(attempt: Attempt) -> str:
    text = " ".join((attempt.response_body or "").split())
    return f" (its body: {text[:120]})" if text else ""


def is_200(attempt: Attempt | None) -> TypeGuard[Attempt]:
    return attempt is not None and attempt.response_status == 200


def answer(attempt: Attempt | None, timeout: float) -> str:
    """What the receiver did with one message, in words: `answered 204 in 3 ms`."""
    if attempt is None:
        return "never got the message (the mock's journal shows no attempt)"
    status = attempt.response_status
    if status is not None:
        return f"answered {status}{_ms(attempt)}" + ("" if status == 200 else _body(attempt))
    if attempt.error == "timeout":
        return f"did not answer within the {timeout:g} s timeout"
    if attempt.error_detail:
        return f"could not be reached ({error_label(attempt.error, attempt.error_detail)})"
    return f"could not be reached ({(attempt.error or 'unknown error').replace('_', ' ')})"


def not_200_advice(attempt: Attempt | None, basic_auth: tuple[str, str] | None) -> str:
    """Why an answer other than 200 fails with QRM, and what to change."""
    if attempt is None:
        return ""
    status = attempt.response_status
    retried = (
        " QRM counts only exactly 200 as delivered: it would send this message again a minute"
        " later, 3 times, and then mark it failed."
    )
    if status is None:
        if attempt.error == "timeout":
            return (
                retried + " Answer 200 as soon as the message is safely stored; do slow work after."
            )
        if is_certificate_failure(attempt.error, attempt.error_detail):
            return (
                " QRM trusts certificates from public CAs only: serve one for the URL's host name."
                " For a local mkcert or self-signed certificate, pass --ca-file with its CA"
                " (mkcert -CAROOT shows where rootCA.pem is) to check the rest."
            )
        if attempt.error == "tls":
            return " QRM could not complete TLS: serve a certificate from a public CA for the URL's host name."
        return " Is the receiver running, and is the URL right?"
    if status in (201, 202, 204):
        return retried + f" Answer 200 (with any body) instead of {status}."
    if 300 <= status < 400:
        where = (attempt.response_headers or {}).get("Location")
        to = f" to {where}" if where else ""
        return (
            f" QRM does not follow redirects{to}: it counts {status} as a failure."
            " Register the final URL, or answer 200 here." + retried
        )
    if status in (401, 403):
        if basic_auth is None:
            return (
                " The receiver wants credentials: pass --basic-auth USER:PASS with the basic auth"
                " QRM's webhook will be configured with."
            )
        return f" It refused the credentials of --basic-auth ({basic_auth[0]}:…): are they the ones it expects?"
    if 400 <= status < 500:
        return (
            " Accept QRM's message as it is: a JSON body with messageId, eventCode, eventName"
            " and payload {resourceId, path}." + retried
        )
    return retried


class ReceiverCheck:
    """Runs the checks in order against one receiver URL; `run` reports each as it ends."""

    def __init__(
        self, client: QrmClient, mirror: FeedMirror, options: CheckOptions, timeout: float
    ) -> None:
        self.client = client
        self.mirror = mirror
        self.options = options
        self.timeout = timeout
        """The receiver's timeout on this mock, in real seconds (QRM: 60)."""
        self.slow = timeout / 6
        """Above this an answer is a warning: 10 s of QRM's 60 s."""
        self._first_sent = time.monotonic()
        """When the first message went out: `calls-back` counts from it (the server's clock may be manual)."""

    # --- the run ----------------------------------------------------------------------

    async def run(
        self, report: Callable[[CheckResult], None] = lambda r: None
    ) -> list[CheckResult]:
        """Every check, in the order of `CHECKS`; `report` sees each result as soon as it is known."""
        results: list[CheckResult] = []
        started = time.monotonic()

        def done(name: str, result: Result, detail: str) -> CheckResult:
            nonlocal started
            now = time.monotonic()
            # The receiver's answer is in the detail: shown as it is in every output (XML too).
            outcome = CheckResult(name, result, printable(detail), round(now - started, 3))
            started = now
            results.append(outcome)
            report(outcome)
            return outcome

        first = await self._first_message(done)
        if first.attempt is None or first.attempt.error in UNREACHABLE:
            why = answer(first.attempt, self.timeout)
            for name in CHECKS[len(results) :]:
                done(name, Result.FAIL, f"not run: the receiver {why}.")
            return results
        done(*await self._basic_auth())
        calls_back = done(*await self._calls_back(first))
        done(*await self._callback_retry(calls_back))
        done(*await self._burst())
        return results

    # --- webhooks and messages ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _webhook(
        self,
        role: str,
        events: Sequence[str] = (CREATED,),
        basic_auth: tuple[str, str] | None = None,
    ) -> AsyncIterator[Webhook]:
        """A webhook for one check, deleted after it (which cancels its pending retries)."""
        hook = await self.client.create_webhook(
            f"check-receiver: {role}", self.options.url, list(events), basic_auth
        )
        try:
            yield hook
        finally:
            with contextlib.suppress(QrmApiError):
                await self.client.delete_webhook(hook.id)

    async def _first_attempts(
        self, webhook_id: int, event_code: str, count: int = 1, resource_id: int | None = None
    ) -> list[FirstAttempt]:
        """The first `count` messages of this webhook and event, once each has had its first attempt."""
        expected = DeliveryMatch(
            status=FIRST_ATTEMPT_DONE,
            webhook_id=webhook_id,
            event_code=event_code,
            resource_id=resource_id,
        )
        try:
            found = await self.mirror.wait(expected, count, self.timeout + JOURNAL_MARGIN)
        except TimeoutError:
            found = self.mirror.matching(expected)
        details = await asyncio.gather(*(self.client.delivery(d.id) for d in found))
        firsts = [FirstAttempt(d, d.attempts[0] if d.attempts else None) for d in details]
        return firsts + [FirstAttempt(None, None)] * (count - len(firsts))

    async def _first_message(self, done: Callable[[str, Result, str], CheckResult]) -> FirstAttempt:
        """acknowledges-200, within-timeout, duplicate-message and file-ready, on one webhook."""
        auth = self.options.basic_auth
        async with self._webhook("first message", (CREATED, FILE_READY), auth) as hook:
            self._first_sent = time.monotonic()
            uploaded = await self.client.upload_report()
            [first] = await self._first_attempts(hook.id, CREATED, resource_id=uploaded.resource_id)
            attempt = first.attempt
            what = f"report.created for report {uploaded.resource_id} ({first.message_id})"
            if is_200(attempt):
                done(CHECKS[0], Result.PASS, f"{what} was answered 200{_ms(attempt)}.")
            else:
                done(
                    CHECKS[0],
                    Result.FAIL,
                    f"{what}: the receiver {answer(attempt, self.timeout)}."
                    + not_200_advice(attempt, auth),
                )
            done(CHECKS[1], *self._within_timeout(attempt))
            if attempt is None or attempt.error in UNREACHABLE or first.delivery is None:
                return first
            done(CHECKS[2], *await self._duplicate(first.delivery, attempt))
            done(CHECKS[3], *await self._file_ready(hook.id, uploaded.resource_id, attempt))
        return first

    # --- the checks --------------------------------------------------------------------------

    def _within_timeout(self, attempt: Attempt | None) -> tuple[Result, str]:
        if attempt is None:
            return Result.FAIL, "no answer: the receiver never got the message."
        if attempt.error == "timeout":
            return Result.FAIL, (
                f"no answer within the {self.timeout:g} s timeout: QRM gives up, counts the message"
                " failed and sends it again a minute later. Answer 200 as soon as the message is"
                " stored, and do slow work (fetching the report, your own processing) after"
                " answering or in a queue."
            )
        seconds = (attempt.duration_ms or 0) / 1000
        if attempt.response_status is None:
            return Result.FAIL, f"no answer: the receiver {answer(attempt, self.timeout)}."
        if seconds > self.slow:
            return Result.WARN, (
                f"answered in {seconds:.1f} s: inside the {self.timeout:g} s timeout, but a slower"
                " day would miss it. Answer once the message is stored; fetch and process the"
                " report after answering."
            )
        return Result.PASS, (
            f"answered{_ms(attempt)}; QRM waits up to {self.timeout:g} s"
            f" (above {self.slow:g} s would be a warning)."
        )

    async def _duplicate(self, delivery: DeliveryDetail, before: Attempt) -> tuple[Result, str]:
        again = await self.client.redeliver(delivery.id)
        what = f"the same message ({delivery.message_id}) sent again"
        if is_200(again):
            return Result.PASS, (
                f"{what} was answered 200{_ms(again)}. (Process a messageId only once: QRM sends"
                " at least once.)"
            )
        if _same_failure(again, before):
            return Result.FAIL, (
                f"{what}: the receiver {answer(again, self.timeout)}, as the first time"
                " (see acknowledges-200)."
            )
        return Result.FAIL, (
            f"{what}: the receiver {answer(again, self.timeout)}. QRM re-sends a message after any"
            " failure or timeout, and people redeliver by hand, always with the same messageId:"
            " answer 200 to a messageId you have already processed, without processing it again."
        )

    async def _file_ready(
        self, webhook_id: int, resource_id: int, created: Attempt
    ) -> tuple[Result, str]:
        await self.client.emit_event(FILE_READY, resource_id)
        [first] = await self._first_attempts(webhook_id, FILE_READY, resource_id=resource_id)
        what = f"report.file_ready for report {resource_id} ({first.message_id})"
        if is_200(first.attempt):
            return Result.PASS, f"{what} was answered 200{_ms(first.attempt)}."
        if first.attempt is not None and _same_failure(first.attempt, created):
            return Result.FAIL, (
                f"{what}: the receiver {answer(first.attempt, self.timeout)}, as it did"
                " report.created (see acknowledges-200)."
            )
        return Result.FAIL, (
            f"{what}: the receiver {answer(first.attempt, self.timeout)}. Answer 200 to every event"
            " the webhook is subscribed to, even one you ignore."
            + not_200_advice(first.attempt, self.options.basic_auth)
        )

    async def _basic_auth(self) -> tuple[str, Result, str]:
        name = CHECKS[4]
        auth = self.options.basic_auth
        if auth is None:
            return (
                name,
                Result.WARN,
                (
                    "not checked (no --basic-auth): the messages went without credentials. QRM's"
                    " messages are not signed, so basic auth is how a receiver tells them from anyone"
                    " else's: configure the webhook with it, and check it with --basic-auth USER:PASS."
                ),
            )
        user, password = auth
        async with contextlib.AsyncExitStack() as hooks:
            none = await hooks.enter_async_context(self._webhook("no credentials"))
            wrong = await hooks.enter_async_context(
                self._webhook("wrong password", basic_auth=(user, "not-" + password))
            )
            right = await hooks.enter_async_context(
                self._webhook("right credentials", basic_auth=auth)
            )
            uploaded = await self.client.upload_report()
            rid = uploaded.resource_id
            firsts = await asyncio.gather(
                *(
                    self._first_attempts(h.id, CREATED, resource_id=rid)
                    for h in (none, wrong, right)
                )
            )
        [without], [mistaken], [proper] = firsts
        problems, advice = [], []
        for label, first in (("without credentials", without), ("with a wrong password", mistaken)):
            status = None if first.attempt is None else first.attempt.response_status
            if status not in (401, 403):
                problems.append(f"a message {label} {answer(first.attempt, self.timeout)}")
        if problems:
            advice.append(
                "Refuse a request whose Authorization header is missing or wrong with 401"
                " (anyone who finds the URL could post fake messages)."
            )
        if not is_200(proper.attempt):
            problems.append(
                f"a message with the right credentials {answer(proper.attempt, self.timeout)}"
            )
            advice.append(f"Answer 200 to the right credentials ({user}:…).")
        if problems:
            return name, Result.FAIL, "; ".join(problems) + ". " + " ".join(advice)
        refused = [
            str(f.attempt.response_status) for f in (without, mistaken) if f.attempt is not None
        ]
        return (
            name,
            Result.PASS,
            (
                f"no credentials and a wrong password were refused ({' and '.join(refused)});"
                f" {user}:… was answered 200."
            ),
        )

    async def _calls_to(self, resource_id: int) -> list[ApiCall]:
        path = f"/api/v1/reports/{resource_id}"
        return [
            c
            for c in await self.client.api_calls()
            if c.method == "GET" and c.path.split("?", 1)[0] == path
        ]

    async def _poll_calls(
        self, resource_id: int, until: float, enough: Callable[[list[ApiCall]], bool]
    ) -> list[ApiCall]:
        """The receiver's calls for this report, polled until `enough` says so or `until` passes."""
        while True:
            calls = await self._calls_to(resource_id)
            if enough(calls) or time.monotonic() >= until:
                return calls
            await asyncio.sleep(self.options.poll_interval)

    async def _calls_back(self, first: FirstAttempt) -> tuple[str, Result, str]:
        name = CHECKS[5]
        assert first.delivery is not None
        rid = first.delivery.resource_id
        within = self.options.callback_timeout
        deadline = self._first_sent + within
        calls = await self._poll_calls(
            rid, deadline, lambda calls: any(c.status == 200 for c in calls)
        )
        route = f"GET {self.options.api_url}/reports/{rid}"
        if any(c.status == 200 for c in calls):
            return name, Result.PASS, f"after report.created it called {route} and got the report."
        if not calls:
            return (
                name,
                Result.WARN,
                (
                    f"it did not call {route} within {within:g} s of report.created. Fine if it only"
                    " queues the message for later; otherwise fetch the report the message points at"
                    f" (payload.path, relative to {self.options.api_url})."
                ),
            )
        statuses = ", ".join("dropped" if c.status is None else str(c.status) for c in calls)
        advice = ""
        if any(c.status == 401 for c in calls):
            key = f" ({self.options.api_key})" if self.options.api_key else ""
            advice = f" 401: send the mock's API key{key} in the apiKey header."
        return (
            name,
            Result.FAIL,
            (f"it called {route} but never got the report (answers: {statuses}).{advice}"),
        )

    async def _callback_retry(self, calls_back: CheckResult) -> tuple[str, Result, str]:
        name = CHECKS[6]
        if calls_back.result is Result.FAIL:
            return (
                name,
                Result.WARN,
                "not checked: its call back never got the report (see calls-back).",
            )
        if calls_back.result is Result.WARN:
            return (
                name,
                Result.WARN,
                "not checked: the receiver did not call back (see calls-back).",
            )
        fault = await self.client.add_fault(REPORT_ROUTE, status=503, times=1)
        try:
            async with self._webhook("callback retry", basic_auth=self.options.basic_auth) as hook:
                uploaded = await self.client.upload_report()
                started = time.monotonic()
                [first] = await self._first_attempts(
                    hook.id, CREATED, resource_id=uploaded.resource_id
                )
            # The webhook is gone, so QRM re-sends nothing: every later call is the receiver's own.
            return name, *await self._judge_retry(uploaded.resource_id, fault.id, first, started)
        finally:
            with contextlib.suppress(QrmApiError):
                await self.client.remove_fault(fault.id)  # 404 once used up: that is fine

    async def _judge_retry(
        self, rid: int, fault_id: int, first: FirstAttempt, started: float
    ) -> tuple[Result, str]:
        within = self.options.callback_timeout
        calls = await self._poll_calls(rid, started + within, bool)
        if not calls:
            return Result.WARN, (
                f"not checked: the receiver did not call back for report {rid} within {within:g} s."
            )
        if calls[0].fault_id != fault_id:
            return Result.WARN, (
                "not checked: the injected 503 went to another call to QRM (is another receiver"
                " using this mock?)."
            )
        retry_within = 2 * within
        faulted_seen = time.monotonic()
        calls = await self._poll_calls(
            rid, faulted_seen + retry_within, lambda cs: any(c.status == 200 for c in cs[1:])
        )
        later = calls[1:]
        route = f"GET /api/v1/reports/{rid}"
        if any(c.status == 200 for c in later):
            tries = len(later)
            return Result.PASS, (
                f"{route} got 503 once; the receiver tried again ({tries} more"
                f" call{'' if tries == 1 else 's'}) and got the report."
            )
        message = ""
        if first.attempt is not None and not is_200(first.attempt):
            message = (
                f" It answered the message {answer(first.attempt, self.timeout).removeprefix('answered ')},"
                " so QRM would re-send it, but only a minute later."
            )
        if later:
            statuses = ", ".join("dropped" if c.status is None else str(c.status) for c in later)
            return Result.FAIL, (
                f"{route} got 503, and its {len(later)} further"
                f" call{'' if len(later) == 1 else 's'} did not get the report either ({statuses})."
                + message
            )
        return Result.FAIL, (
            f"{route} got 503 and the receiver did not try again within {retry_within:g} s."
            + message
            + " QRM's API answers 5xx or 429 now and then: retry such a call after a short"
            " backoff (say 1 s, 2 s, 4 s; honour Retry-After) before giving up."
        )

    async def _burst(self) -> tuple[str, Result, str]:
        name = CHECKS[7]
        count = self.options.burst
        async with self._webhook("burst", basic_auth=self.options.basic_auth) as hook:
            await asyncio.gather(*(self.client.upload_report() for _ in range(count)))
            firsts = await self._first_attempts(hook.id, CREATED, count)
        attempts = [f.attempt for f in firsts]
        ok = [a for a in attempts if is_200(a)]
        slowest = max((a.duration_ms or 0 for a in attempts if a is not None), default=0) / 1000
        if len(ok) == count:
            if slowest > self.slow:
                return (
                    name,
                    Result.WARN,
                    (
                        f"all {count} messages sent at once were answered 200, the slowest in"
                        f" {slowest:.1f} s: close to the {self.timeout:g} s timeout. Answer before"
                        " processing, or process more messages at once."
                    ),
                )
            return (
                name,
                Result.PASS,
                (
                    f"all {count} messages sent at once were answered 200, the slowest in"
                    f" {slowest * 1000:.0f} ms."
                ),
            )
        failures = Counter(_short(a, self.timeout) for a in attempts if not is_200(a))
        listed = ", ".join(f"{what} ({n})" for what, n in failures.most_common())
        return (
            name,
            Result.FAIL,
            (
                f"{len(ok)} of {count} messages sent at once were answered 200; the others: {listed}."
                " QRM sends many messages at once (a busy day, or retries after an outage): answer"
                " each within the timeout, without refusing or dropping connections."
            ),
        )


def _same_failure(one: Attempt, other: Attempt) -> bool:
    return not is_200(one) and (one.response_status, one.error) == (
        other.response_status,
        other.error,
    )


def _short(attempt: Attempt | None, timeout: float) -> str:
    if attempt is None:
        return "no attempt"
    if attempt.response_status is not None:
        return str(attempt.response_status)
    return (attempt.error or "error").replace("_", " ")


def worst(results: Iterable[CheckResult]) -> Result:
    """FAIL if any failed, else WARN if any warned, else PASS."""
    seen = {r.result for r in results}
    for result in (Result.FAIL, Result.WARN):
        if result in seen:
            return result
    return Result.PASS
