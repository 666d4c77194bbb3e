"""The API's resources as pydantic models: one definition, used by the server
to validate and serialise and by the TUI to parse.

JSON fields are camelCase like QRM's; Python attributes are snake_case.
Request models forbid unknown fields so a typo is a 422, not a silent no-op;
resource models ignore unknown fields so older clients survive additions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from mock_qrm.contract.codes import DeliveryStatus, Outcome, Trigger
from mock_qrm.contract.rules import (
    DELIVERY_MARKER,
    HEADER_NAME,
    HEADER_VALUE,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_URL_LENGTH,
    MAX_USERNAME_LENGTH,
    NAME_PATTERN,
    PASSWORD_PATTERN,
    PLAIN_TEXT,
    RESERVED_HEADERS,
    URL_PATTERN,
    USERNAME_PATTERN,
    check_name,
    check_password,
    check_plain,
    check_url,
    check_username,
)
from mock_qrm.contract.timefmt import iso_z

Timestamp = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]
"""A UTC time, written as `2026-11-28T15:04:05.123Z`."""


def _naive_is_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _not_a_number(value: Any) -> Any:
    """A time is ISO 8601 text: pydantic alone would read `0.5` as Unix seconds, 1970.

    Text is parsed here, laxly: after a before-validator a strict body would refuse any string.
    """
    if not isinstance(value, str):
        return value
    if _NUMBER.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-28T15:04:05Z")
    return _DATETIME.validate_python(value)


UtcInput = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_naive_is_utc)]
"""A time from a client; one without an offset is UTC, never the server's local time."""


WebhookName = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": f"1 to {MAX_NAME_LENGTH} characters once the space around them is"
            " trimmed",
        }
    ),
]
WebhookUrl = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_URL_LENGTH,
            "pattern": URL_PATTERN,
            "description": "An absolute http(s) URL without credentials; space around it is"
            " trimmed",
        }
    ),
]
EVENT_CODE = {"x-catalog": "eventCode"}
"""Where the document names a code of the event catalog: `openapi_document` fills in the enum."""
EventCodes = Annotated[
    list[str], WithJsonSchema({"type": "array", "minItems": 1, "items": EVENT_CODE})
]
EventCode = Annotated[str, WithJsonSchema(EVENT_CODE)]
PlainText = Annotated[
    str,
    AfterValidator(lambda value: check_plain(value)),
    Field(json_schema_extra={"pattern": PLAIN_TEXT}),
]
"""Free text: anything but control characters (a terminal would act on them, a table row split)."""
Username = Annotated[
    str,
    AfterValidator(check_username),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": USERNAME_PATTERN,
            "description": f"1 to {MAX_USERNAME_LENGTH} characters: no colon, no control character",
        }
    ),
]
Password = Annotated[
    str,
    AfterValidator(check_password),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "pattern": PASSWORD_PATTERN,
            "description": f"1 to {MAX_PASSWORD_LENGTH} characters, no control character",
        }
    ),
]


def _omittable(schema: dict[str, Any]) -> None:
    """A PATCH field that may be left out but not set to null: no `default: null` documented."""
    schema.pop("default", None)


SqlInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""An integer SQLite can bind: a larger id or offset is a 422, not a crash."""


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class RequestModel(CamelModel):
    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Envelope(CamelModel, Generic[T]):
    """QRM's envelope for one resource: `{"data": ...}`."""

    data: T


class Page(CamelModel, Generic[T]):
    """QRM's envelope for a list: `{"data": [...], "limit", "offset", "total"}`."""

    data: list[T]
    limit: int
    offset: int
    total: int


class ApiError(CamelModel):
    """QRM's error shape; `errors` maps a dotted field path to its messages (422)."""

    error_code: str
    message: str
    errors: dict[str, list[str]] | None = None


# --- webhooks -------------------------------------------------------------


def unknown_codes(codes: list[str], known: frozenset[str]) -> str | None:
    """Why some of `codes` are not the catalog's, naming the valid ones; `None` if all are."""
    unknown = sorted({code for code in codes if code not in known})
    if not unknown:
        return None
    return f"Unknown event code: {', '.join(unknown)}; known: {', '.join(sorted(known))}"


def _check_events(value: list[str], info: ValidationInfo) -> list[str]:
    if not value:
        raise ValueError("Select at least one event")
    known: frozenset[str] | None = (info.context or {}).get("event_codes")
    if known is not None and (problem := unknown_codes(value, known)):
        raise ValueError(problem)
    return list(dict.fromkeys(value))


KeptPassword = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^(?:{PASSWORD_PATTERN[1:-1]})?$",
            "description": f"Up to {MAX_PASSWORD_LENGTH} characters, no control character",
        }
    ),
]
"""A password on edit: empty keeps the stored one."""
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_NAME)]


def _header_value(value: str) -> str:
    """A custom header's value: no control character but the tab; space around it trimmed."""
    check_plain(value.replace("\t", " "))
    return value.strip(" \t")


HeaderValue = Annotated[
    str,
    StringConstraints(max_length=MAX_HEADER_VALUE),
    AfterValidator(_header_value),
    Field(json_schema_extra={"pattern": HEADER_VALUE}),
]


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)


_RESERVED = "|".join(_any_case(name) for name in (*RESERVED_HEADERS, DELIVERY_MARKER))
CustomHeaders = Annotated[
    dict[HeaderName, HeaderValue],
    Field(
        max_length=MAX_HEADERS,
        json_schema_extra={
            "additionalProperties": False,
            "propertyNames": {"not": {"pattern": f"^(?:{_RESERVED})$"}},
            "description": "Sent with every attempt. Names ignore case and must differ; the"
            " request's own headers are refused, and Authorization while basic auth is on",
        },
    ),
]
"""A webhook's own headers, sent with every attempt (SPEC.md section 8.7)."""


class RateLimit(RequestModel):
    """At most `limit` attempts in any sliding window of one `period`."""

    limit: Annotated[int, Field(ge=1, le=100_000)]
    period: Literal["minute", "hour"]

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}"

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`2/minute` or `100/hour`, as the CLI, the kit and the TUI form take it."""
        count, _, period = text.strip().partition("/")
        digits = count.strip()
        if not (digits.isascii() and digits.isdigit()) or period.strip() not in ("minute", "hour"):
            raise ValueError(f"expected N/minute or N/hour, like 2/minute, not {text!r}")
        return cls(limit=int(digits), period=period.strip())


class BasicAuthIn(RequestModel):
    username: Username
    password: Password


class BasicAuthPatch(RequestModel):
    """Basic auth on edit: an omitted password keeps the stored one."""

    username: Username
    password: KeptPassword | None = Field(
        None,
        description="Omitted, null or empty: keep the stored password; a webhook without one"
        " answers 422 on `basicAuth.password`",
    )

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        return check_password(value) if value else None


class WebhookCreate(RequestModel):
    name: WebhookName
    url: WebhookUrl
    events: EventCodes
    basic_auth: BasicAuthIn | None = None
    active: StrictBool = True
    headers: CustomHeaders = Field(default_factory=dict)
    rate_limit: RateLimit | None = None

    _name = field_validator("name")(check_name)
    _url = field_validator("url")(check_url)
    _events = field_validator("events")(_check_events)


class WebhookPatch(RequestModel):
    """Any subset of a webhook's fields; `basicAuth: null` turns basic auth off."""

    # Documented without null: null is refused (422, `check_patch`), not "leave as is".
    name: WebhookName | SkipJsonSchema[None] = Field(None, json_schema_extra=_omittable)
    url: WebhookUrl | SkipJsonSchema[None] = Field(None, json_schema_extra=_omittable)
    events: EventCodes | SkipJsonSchema[None] = Field(None, json_schema_extra=_omittable)
    basic_auth: BasicAuthPatch | None = None
    active: StrictBool | SkipJsonSchema[None] = Field(None, json_schema_extra=_omittable)
    headers: CustomHeaders | SkipJsonSchema[None] = Field(None, json_schema_extra=_omittable)
    """Replaces every custom header; `{}` removes them all."""
    rate_limit: RateLimit | None = None
    """`null` removes the limit."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if value is None else _check_events(value, info)


class BasicAuthOut(CamelModel):
    """Basic auth as the API shows it: the password is write-only."""

    username: str
    password_set: bool = True


class LastDelivery(CamelModel):
    """The most recent delivery to a webhook, for the Webhooks table."""

    delivery_id: int
    status: DeliveryStatus
    response_status: int | None = None
    error: str | None = None
    at: Timestamp


class Webhook(CamelModel):
    id: int
    name: str
    url: str
    events: list[str]
    basic_auth: BasicAuthOut | None = None
    active: bool
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimit | None = None
    created_at: Timestamp
    updated_at: Timestamp
    last_delivery: LastDelivery | None = None


class EventTypeOut(CamelModel):
    event_code: str
    event_name: str


class EventComponent(CamelModel):
    component: str
    events: list[EventTypeOut]


# --- deliveries -----------------------------------------------------------


class MessagePayload(CamelModel):
    resource_id: int
    path: str


class WebhookMessage(CamelModel):
    """The body QRM POSTs to a receiver (SPEC.md section 2)."""

    message_id: str
    event_code: str
    event_name: str
    payload: MessagePayload


class Attempt(CamelModel):
    number: int
    trigger: Trigger
    started_at: Timestamp
    duration_ms: int | None = None
    url: str
    request_headers: dict[str, str]
    request_body: str | None = None
    response_status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    response_truncated: bool = False
    error: str | None = None
    error_detail: str | None = None
    """More than the error class says, where there is more: a `tls` failure's reason,
    `certificate verify failed for HOST: self-signed certificate`."""
    outcome: Outcome | None = None
    """`None` while the attempt is in flight."""


class Delivery(CamelModel):
    id: int
    message_id: str
    webhook_id: int
    webhook_name: str
    event_code: str
    resource_id: int
    status: DeliveryStatus
    attempt_count: int
    """Automatic attempts that ended: the n of n/4."""
    attempts_total: int = 0
    """Every attempt started, manual ones included."""
    next_attempt_at: Timestamp | None = None
    created_at: Timestamp
    completed_at: Timestamp | None = None
    last_response_status: int | None = None
    last_error: str | None = None
    last_error_detail: str | None = None
    """The last attempt's `errorDetail`."""
    last_duration_ms: int | None = None


class DeliveryDetail(Delivery):
    message: WebhookMessage
    attempts: list[Attempt]


class DeliveryFields(BaseModel):
    """What a delivery can be filtered on, in a query string or in a bulk body."""

    webhook_id: SqlInt | None = None
    status: DeliveryStatus | None = None
    event_code: EventCode | None = None
    resource_id: SqlInt | None = None
    message_id: PlainText | None = None
    since: UtcInput | None = None
    until: UtcInput | None = None

    @field_validator("event_code")
    @classmethod
    def _known_event(cls, value: str | None, info: ValidationInfo) -> str | None:
        known: frozenset[str] | None = (info.context or {}).get("event_codes")
        if value is not None and known is not None and (problem := unknown_codes([value], known)):
            raise ValueError(problem)
        return value

    def matches(self, delivery: Delivery) -> bool:
        """The filter as a predicate: what the journal's query selects, for one delivery."""
        return (
            (self.webhook_id is None or delivery.webhook_id == self.webhook_id)
            and (self.status is None or delivery.status == self.status)
            and (self.event_code is None or delivery.event_code == self.event_code)
            and (self.resource_id is None or delivery.resource_id == self.resource_id)
            and (self.message_id is None or delivery.message_id == self.message_id)
            and (self.since is None or delivery.created_at >= self.since)
            and (self.until is None or delivery.created_at <= self.until)
        )


class DeliveryFilter(RequestModel, DeliveryFields):
    """Which deliveries a list or a bulk redelivery covers (camelCase in a body)."""


class BulkRedeliverResult(CamelModel):
    count: int


# --- per-webhook statistics (SPEC.md section 9.6) ------------------------------


STATS_PERCENTILES = (50, 95, 99)


class LatencyMs(CamelModel):
    """How long attempts took (`durationMs`), as nearest-rank percentiles: the smallest
    duration that at least that share of the attempts took no longer than. Over every
    attempt that succeeded or failed (a refused connection and a timeout too); `null`
    when there is none."""

    p50: int | None = None
    p95: int | None = None
    p99: int | None = None


class StatsMinute(CamelModel):
    """One minute of a webhook's attempts, by start time (for a sparkline)."""

    at: Timestamp = Field(description="The minute's first millisecond")
    attempts: int = Field(description="Attempts that started in the minute and have ended")
    failures: int = Field(description="Of those, the ones with outcome `failure`")
    p95: int | None = Field(None, description="Their 95th percentile duration, milliseconds")


class WebhookStats(CamelModel):
    """A webhook's delivery figures, read from the journal.

    Attempt figures (`attempts`, `byStatus`, `successRate`, `latencyMs`,
    `lastSuccessAt`, `lastFailureAt`) count the attempts that have ended,
    automatic and manual, that started at or after `since`. Delivery figures
    (`delivered`, `failed`) count the deliveries created at or after `since` that
    are in that state now, as `GET /api/v1/webhook-deliveries?webhook_id=&status=&since=`
    totals them. A removed webhook keeps its history, and its stats.
    """

    webhook_id: int
    removed: bool = Field(description="The webhook was removed; its history stays")
    since: Timestamp | None = Field(description="As asked; `null`: the whole journal")
    attempts: int = Field(
        description="Attempts that ended (success, failure or interrupted); in flight ones wait"
    )
    delivered: int = Field(description="Deliveries in state `delivered`")
    failed: int = Field(description="Deliveries in state `failed`: every attempt used up")
    success_rate: float | None = Field(
        description="Attempts that succeeded (exactly 200) over those that succeeded or"
        " failed, from 0 to 1; `null` without any. An attempt `interrupted` by the server"
        " stopping says nothing of the receiver and is left out"
    )
    latency_ms: LatencyMs
    by_status: dict[str, int] = Field(
        description='Attempts by the HTTP status answered (`"200"`, `"500"`), else by'
        " error class (`timeout`, `connection_refused`, ..., `interrupted`); they add up to"
        " `attempts`"
    )
    last_success_at: Timestamp | None = Field(
        description="When the latest successful attempt started"
    )
    last_failure_at: Timestamp | None = Field(description="When the latest failed attempt started")
    per_minute: list[StatsMinute] = Field(
        default_factory=list,
        description="With `per_minute=N`: the last N minutes of the server's clock, oldest"
        " first, the current minute last (whatever `since` is)",
    )


# --- reports and simulation -------------------------------------------------


class LoginForm(RequestModel):
    username: Annotated[PlainText, StringConstraints(min_length=1, max_length=MAX_USERNAME_LENGTH)]
    password: Annotated[PlainText, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class LoginResult(CamelModel):
    token: str
    refresh_token: str
    username: str
    org_name: str
    avatar_url: str


class UploadReport(RequestModel):
    """A simulated upload; `overrides` are `inspectionGeneral` fields to set."""

    overrides: dict[str, Any] = Field(default_factory=dict)


class UploadedReport(CamelModel):
    resource_id: int
    inspection_id: str
    path: str


class EmitEvent(RequestModel):
    event_code: EventCode
    resource_id: SqlInt


class EmittedEvent(CamelModel):
    event_code: str
    resource_id: int
    deliveries: int


class ReportRow(CamelModel):
    """A report as the TUI lists it: the columns, not QRM's whole document."""

    id: int
    inspection_id: str
    case_number: str
    inspection_type: str
    result: str
    status: str
    created_at: Timestamp
    file_ready: bool


class ClockState(CamelModel):
    now: Timestamp
    manual: bool
    time_scale: float


class ClockAdvance(RequestModel):
    seconds: Annotated[float, Field(ge=0.001, le=366 * 86400)]
    """The manual clock keeps whole milliseconds, as the journal does."""


# --- faults on QRM's own routes (the receiver's call back) -------------------------


FaultRoute = Literal[
    "POST /api/v1/auth/login",
    "GET /api/v1/reports",
    "GET /api/v1/reports/{id}",
    "GET /files/reports/{id}.pdf",
]


class FaultSpec(RequestModel):
    """What QRM's API does, for the next `times` matching calls (absent: until removed)."""

    # The document says what `model_post_init` and `_reset_alone` check ("integer": not null).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["status"], "properties": {"status": {"type": "integer"}}},
                {"required": ["delayMs"], "properties": {"delayMs": {"type": "integer"}}},
                {"required": ["reset"], "properties": {"reset": {"const": True}}},
            ],
            "not": {
                "required": ["status", "reset"],
                "properties": {"status": {"type": "integer"}, "reset": {"const": True}},
            },
        }
    )

    route: FaultRoute
    status: Annotated[int, Field(ge=400, le=599)] | None = None
    """Answer this status, in QRM's error shape."""
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] | None = None
    """Wait this long first; alone, the answer is the normal one."""
    retry_after: Annotated[int, Field(ge=0, le=86_400)] | None = None
    """Seconds, sent as the `Retry-After` header."""
    reset: StrictBool = False
    """Drop the connection instead of answering."""
    times: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @field_validator("reset")
    @classmethod
    def _reset_alone(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("status") is not None:
            raise ValueError("a reset drops the connection: it cannot also answer a status")
        return value

    def model_post_init(self, context: Any, /) -> None:
        if self.status is None and self.delay_ms is None and not self.reset:
            raise ValueError("a fault needs a status, a delayMs or reset: true")


class Fault(CamelModel):
    id: int
    route: str
    status: int | None = None
    times: int | None = None
    remaining: int | None = None
    """Matching calls it still applies to (`null`: until removed)."""
    delay_ms: int | None = None
    retry_after: int | None = None
    reset: bool = False


class ApiCall(CamelModel):
    """One call to a QRM route, as a receiver made it."""

    at: Timestamp
    method: str
    path: str
    status: int | None
    """`null` when a fault dropped the connection."""
    fault_id: int | None = None


# --- scenarios: the mock's state as a file declares it (SPEC 9.4) -------------------------


class ScenarioBasicAuth(CamelModel):
    username: str
    password: str | None = None
    """Shown only when asked for (`with_secrets=true`); a scenario file reads it from `${ENV}`."""


class ScenarioWebhook(CamelModel):
    """A webhook as a scenario declares it: its fields, not its id or history."""

    name: str
    url: str
    events: list[str]
    active: bool = True
    basic_auth: ScenarioBasicAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimit | None = None


class ScenarioDocument(CamelModel):
    """The running state in a scenario file's shape: `mock-qrm export-config` writes it as TOML.

    `server` holds serve's settings by their names (`time_scale`, as `--time-scale` and
    `MOCK_QRM_TIME_SCALE` name them), all but where and how it listens (`host`, `port`,
    `db`, `api_key`); `faults` are the active ones, each with the calls it has left.
    """

    server: dict[str, Any] = Field(default_factory=dict)
    webhooks: list[ScenarioWebhook] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)


class ScenarioApply(RequestModel):
    """A scenario to apply to a running server: each webhook created, or updated to match, by
    name; each fault added. `server` settings cannot change while it runs: any given must be
    the values it runs with."""

    server: dict[str, Any] = Field(default_factory=dict)
    webhooks: list[WebhookCreate] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)


class ScenarioApplied(CamelModel):
    """What applying a scenario did: webhooks created, updated, already as declared; faults added."""

    created: list[Webhook] = Field(default_factory=list)
    updated: list[Webhook] = Field(default_factory=list)
    unchanged: list[Webhook] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    def summary(self) -> str:
        """`2 webhooks created, 1 updated, 0 unchanged; 1 fault added`."""
        faults = len(self.faults)
        return (
            f"{len(self.created)} webhook{'' if len(self.created) == 1 else 's'} created,"
            f" {len(self.updated)} updated, {len(self.unchanged)} unchanged;"
            f" {faults} fault{'' if faults == 1 else 's'} added"
        )


class OverdueItem(CamelModel):
    """The work that has most missed its time."""

    kind: str
    """`delivery` (an attempt not started), `event` (a scheduled event), or a `… write` to retry."""
    id: int
    late_ms: int


class Health(CamelModel):
    status: Literal["ok", "degraded"]
    reason: str | None = None
    """Why the server is degraded: a store that refuses writes, a stopped dispatcher, overdue work."""
    unavailable: bool = False
    """The store or the dispatcher is down (`/healthz` answers 503), not merely behind."""
    version: str
    dispatcher_alive: bool
    queue_depth: int
    in_flight: int
    oldest_overdue_ms: int | None = None
    """How late the most overdue work is, in milliseconds."""
    oldest_overdue: OverdueItem | None = None
    manual_clock: bool
    now: Timestamp | None = None
    """The server's clock (a manual one does not move by itself)."""
    time_scale: float
    max_attempts: int
    """1 + retries: what "attempt n of N" counts to."""
    timeout_seconds: float
    retry_interval_seconds: float
    """Both after the time scale, as the dispatcher applies them."""
    insecure_receivers: bool = False
    """`https` webhooks' certificates are not checked (`--insecure-receivers`)."""


# --- live feed -------------------------------------------------------------


FEED_TYPES = frozenset({"hello", "delivery", "webhook", "report", "resync", "heartbeat"})


class FeedFrame(CamelModel):
    """One frame of `GET /api/v1/webhook-feed`."""

    seq: int | None = None
    type: str
    """One of FEED_TYPES; a plain string so an older client survives a newer frame."""
    action: str | None = None
    """A webhook's `created`, `updated` or `deleted`; a report's `created` or `updated`; a
    delivery's `attempt_started` or `attempt_ended` when an attempt changed it."""
    trigger: str | None = None
    """With a delivery's attempt action: the attempt's trigger, `automatic` or `manual`."""
    delivery: Delivery | None = None
    webhook: Webhook | None = None
    report: ReportRow | None = None
    boot_id: str | None = None


LastDelivery.model_rebuild()


# --- query parameters --------------------------------------------------------


class QueryModel(BaseModel):
    """Query parameters: snake_case like QRM's; unknown ones are ignored, as QRM does."""

    model_config = ConfigDict(extra="ignore")


class ReportQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 10
    offset: Annotated[SqlInt, Field(ge=0)] = 0
    order: Literal["created_date:desc", "created_date:asc"] = "created_date:desc"
    status: Literal["in-progress", "pending", "completed"] | None = None
    capa_status: PlainText | None = None
    style_id: PlainText | None = None
    created_from: UtcInput | None = None
    created_to: UtcInput | None = None
    updated_from: UtcInput | None = None
    updated_to: UtcInput | None = None
    system_updated_from: UtcInput | None = None
    system_updated_to: UtcInput | None = None
    inspection_date_from: UtcInput | None = None
    inspection_date_to: UtcInput | None = None


class DeliveryQuery(QueryModel, DeliveryFields):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[SqlInt, Field(ge=0)] = 0

    def filter(self) -> DeliveryFilter:
        return DeliveryFilter.model_validate(self.model_dump(exclude={"limit", "offset"}))


class PageQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[SqlInt, Field(ge=0)] = 0


class WebhookQuery(PageQuery):
    """Webhooks are few: one page of up to 200 is the whole registry for most users."""

    limit: Annotated[int, Field(ge=1, le=200)] = 200


class ScenarioQuery(QueryModel):
    with_secrets: bool = False
    """Show webhooks' basic-auth passwords (see docs/scenarios.md on who may)."""


class StatsQuery(QueryModel):
    since: UtcInput | None = Field(
        None, description="Count attempts started, and deliveries created, at or after this time"
    )
    per_minute: int = Field(
        0,
        ge=0,
        le=1440,
        description="Also give the last N minutes one by one (`perMinute`), N up to 1440",
    )
