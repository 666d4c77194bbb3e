"""What an upload may set of a report: `inspectionGeneral` fields, as pydantic models.

A transcription of the reference's `InspectionGeneral`, so an override can never
produce a report that fails validation. Pydantic validates (strictly, as JSON
has it), writes the JSON Schema the OpenAPI document shows, and the times come
out in the field's QRM format. Refusals read like the rest of the API's:
`overrides.tags.1: must be a string`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict

from mock_qrm.contract.errors import validation_messages
from mock_qrm.contract.rules import CONTROLS, PLAIN_TEXT, has_control

Status = Literal["completed", "in-progress", "pending"]
Result = Literal["pass", "fail", "pending"]
CapaStatus = Literal[
    "Waiting for Response",
    "Submitted",
    "Submitted by Reviewer",
    "Rejected",
    "Re-inspection Requested (Solved)",
    "Re-inspection Requested (Unsolved)",
    "Approved",
]
STATUSES: tuple[str, ...] = get_args(Status)
RESULTS: tuple[str, ...] = get_args(Result)
CAPA_STATUSES: tuple[str, ...] = get_args(CapaStatus)
NOT_OVERRIDABLE = {
    "id": "the report id is assigned by the server",
    "inspectionId": "the inspection UUID is assigned by the server",
    "pdfUrl": "pdfUrl is set by the server once the report file is ready",
}
YEARS = range(1900, 9999)
"""Override times are in these years, as written: other fields are dated days either side."""
_YEAR_PATTERN = "^(?:19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
"""`YEARS`, for the document."""
TIME_HINT = "an ISO 8601 date-time with a timezone, e.g. 2021-06-03T07:18:05Z"


class ReportOverrideError(ValueError):
    """An override names an unknown field or carries a value the reference would refuse."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CheckedOverrides(dict[str, Any]):
    """Overrides already checked and in QRM's formats: a report can be generated from them."""


# --- formats -----------------------------------------------------------------------------


def qrm_timestamp(moment: datetime) -> str:
    """QRM's usual timestamp: `2021-06-03 07:18:05.372000+00:00`."""
    return moment.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


def qrm_day(moment: datetime) -> str:
    """QRM's day-precision timestamp (`expectedDate`): `2021-06-03 00:00:00+00:00`."""
    return moment.astimezone(UTC).isoformat(sep=" ", timespec="seconds")


def rfc3339(moment: datetime) -> str:
    """RFC 3339, as `actualInspectionDate` is typed `date-time`: `2021-06-03T00:00:00+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 string with a timezone (or a bare date, taken as UTC), in its own offset.

    Not yet in UTC: `9999-12-31T23:59:59-23:59` is valid, but in the year 10000 there.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        if len(value) != len("2021-06-03"):
            return None
        moment = moment.replace(tzinfo=UTC)
    return moment


def _in_format(write: Callable[[datetime], str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        moment = parse_time(value)
        if moment is None:
            raise ValueError(f"must be {TIME_HINT}")
        if moment.year not in YEARS:
            raise ValueError(f"must be in the years {YEARS.start} to {YEARS.stop - 1}")
        return write(moment)

    return check


def _plain(value: str) -> str:
    if has_control(value):
        raise ValueError("must not contain control characters")
    return value


_TIME_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}],
        "pattern": _YEAR_PATTERN,
        "description": f"{TIME_HINT} (a date alone is midnight UTC), in the years"
        f" {YEARS.start} to {YEARS.stop - 1}",
    }
)

Text = Annotated[str, AfterValidator(_plain), Field(json_schema_extra={"pattern": PLAIN_TEXT})]
"""Free text: anything but control characters (they would reach a terminal as commands)."""
Name = Annotated[Text, StringConstraints(min_length=1)]
Time = Annotated[str, AfterValidator(_in_format(qrm_timestamp)), _TIME_SCHEMA]
Day = Annotated[str, AfterValidator(_in_format(qrm_day)), _TIME_SCHEMA]
Rfc3339 = Annotated[str, AfterValidator(_in_format(rfc3339)), _TIME_SCHEMA]
Texts = list[Text] | None

OMITTED: Any = None
"""The default of a field that may be left out but not set to `null` (refused: `must not
be null`); a field typed `X | None` may be `null`, as the reference allows."""


# --- the shapes --------------------------------------------------------------------------


_EXTRA_SCHEMA: JsonDict = {
    "propertyNames": {"pattern": PLAIN_TEXT},
    "additionalProperties": {"not": {"type": "string", "pattern": f"[{CONTROLS}]"}},
}
"""What `_Part` checks of the fields the reference leaves open: their names, and a value
that is text, hold no control character."""


class _Part(BaseModel):
    """A nested object: its own fields checked, any other kept as given but for control
    characters in its name or in its text (`_EXTRA_SCHEMA`).

    Fields are named as the reference (and JSON) names them: camelCase.
    """

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_EXTRA_SCHEMA)

    @model_validator(mode="after")
    def _plain_extras(self) -> Self:
        for name, value in (self.model_extra or {}).items():
            if has_control(name):
                raise ValueError(f"a field name must not contain control characters: {name!r}")
            if isinstance(value, str) and has_control(value):
                raise ValueError(f"{name} must not contain control characters")
        return self


class Contact(_Part):
    contactId: Text = OMITTED
    email: Text = OMITTED
    mobileNumber: Text = OMITTED
    name: Text = OMITTED
    telephoneNumber: Text = OMITTED


class Organization(_Part):
    address: Text = OMITTED
    city: Text = OMITTED
    contact: Contact = OMITTED
    country: Text = OMITTED
    name: Text = OMITTED
    organizationId: Text = OMITTED


class LocalOrganization(Organization):
    localOrganizationId: Text | None = None
    localOrganizationIds: Texts = None


class Person(_Part):
    email: Text = OMITTED
    id: Text = OMITTED
    mobileNumber: Text = OMITTED
    name: Text = OMITTED


class Inspector(Person):
    employeeId: Text = OMITTED


class Office(_Part):
    id: Text | None = None
    name: Text | None = None


class PurchaseOrder(_Part):
    poNumber: Text = OMITTED


class InspectionType(_Part):
    typeOfInspection: Name
    typeOfInspectionName: Text | None = None


class _Item(_Part):
    brandId: Text | None = None
    brandName: Name = OMITTED
    classId: Text | None = None
    color: Name
    departmentId: Text | None = None
    id: Text | None = None
    itemId: Name
    purchaseOrders: Texts = None
    shipmentTerm: Text | None = None
    size: Name
    availableQuantity: int | None = None


class Solid(_Item):
    availableCartonQuantity: int | None = None
    cartonQuantity: Annotated[int, Field(ge=0)] | None = None
    casePackQuantity: Annotated[int, Field(ge=0)] | None = None
    quantity: Annotated[int, Field(ge=1)]


class AssortmentItem(_Item):
    configuration: Annotated[int, Field(ge=1)]
    quantity: int | None = None


class Assortment(_Part):
    assortmentId: Name
    availableCartonQuantity: int | None = None
    cartonQuantity: Annotated[int, Field(ge=0)]
    items: Annotated[list[AssortmentItem], Field(min_length=1)]


class MeasurementSize(_Part):
    measurement: Text
    size: Name


class Measurement(_Part):
    caption: Name
    isPomCritical: bool | None = None
    pom: Name
    sizes: list[MeasurementSize] = OMITTED
    tolerance: Text
    toleranceLower: float | None = None
    toleranceUpper: float | None = None
    unit: Literal["inch", "cm", "mm"]


class ProductStyle(_Part):
    assortments: list[Assortment] | None = None
    measurements: list[Measurement] = OMITTED
    productCategoryId: Text
    productCategoryName: Name = OMITTED
    solids: list[Solid] | None = None
    styleId: Name
    styleName: Text | None = None


def _code_alone(value: Any) -> Any:
    """`"PST"` for a type is `{"typeOfInspection": "PST"}`."""
    return {"typeOfInspection": value} if isinstance(value, str) else value


def _or_code(schema: dict[str, Any]) -> None:
    """The document says what `_code_alone` takes besides the object."""
    given = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string", "minLength": 1, "pattern": PLAIN_TEXT}, given]


class InspectionOverrides(BaseModel):
    """`inspectionGeneral` fields to set; every other field is generated."""

    model_config = ConfigDict(extra="forbid", strict=True)

    actualInspectionDate: Rfc3339 | None = None
    bookingType: Text = OMITTED
    capaStatus: CapaStatus = OMITTED
    caseNumber: Name = OMITTED
    client: LocalOrganization = OMITTED
    country: Text = OMITTED
    createdDate: Time = OMITTED
    creator: Person = OMITTED
    executor: Organization = OMITTED
    expectedDate: Day = OMITTED
    factory: LocalOrganization = OMITTED
    inspectionDate: Time = OMITTED
    inspectionForm: Text = OMITTED
    inspectionLocation: LocalOrganization = OMITTED
    inspectionResult: Result = OMITTED
    inspector: Inspector = OMITTED
    isReferenceSample: int = OMITTED
    opoNumber: Text = OMITTED
    oversightOffice: Office = OMITTED
    photos: Texts = None
    poNumber: Name = OMITTED
    pos: list[PurchaseOrder] | None = None
    productCategories: Texts = None
    productLineId: Text = OMITTED
    productLineName: Text = OMITTED
    productOrders: Texts = None
    productStyles: list[ProductStyle] | None = None
    status: Status = OMITTED
    systemUpdatedAt: Time = OMITTED
    tags: Texts = None
    type: Annotated[
        InspectionType,
        BeforeValidator(_code_alone),
        Field(json_schema_extra=_or_code),
    ] = OMITTED
    """The type, or its code alone (its name then comes from the catalog of types)."""
    updatedDate: Time = OMITTED
    vendor: LocalOrganization = OMITTED
    workflowName: Text | None = None


OVERRIDABLE = frozenset(InspectionOverrides.model_fields)


def check_overrides(overrides: Mapping[str, Any]) -> CheckedOverrides:
    """Overrides checked (`ReportOverrideError` on the first field that breaks a rule) and
    written in QRM's formats, ready for `ReportGenerator.generate`."""
    for name in overrides:
        if name in NOT_OVERRIDABLE:
            raise ReportOverrideError(name, f"cannot be overridden: {NOT_OVERRIDABLE[name]}")
    try:
        checked = InspectionOverrides.model_validate(dict(overrides))
    except ValidationError as exc:
        [(where, message), *_] = validation_messages(exc, _worded)
        raise ReportOverrideError(".".join(str(part) for part in where), message) from None
    return CheckedOverrides(checked.model_dump(exclude_unset=True))


_TYPES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be an array",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "string_too_short": "must not be empty",
    "missing": "is required",
    "extra_forbidden": "is not an inspectionGeneral field that can be set",
}


def _worded(error: Any) -> str:
    """Pydantic's error as the API words it (`must be a string`)."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if error.get("input", "") is None and kind.endswith("_type"):
        return "must not be null"
    if kind == "literal_error" and not isinstance(error.get("input"), str):
        return "must be a string"
    if kind == "too_short" and isinstance(error.get("input"), str):
        return "must not be empty"
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"must be one of: {expected}"
    if kind == "too_short":
        return f"must hold at least {context.get('min_length')} item(s)"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    return _TYPES.get(kind) or str(error["msg"]).removeprefix("Value error, ")


def override_schema() -> dict[str, Any]:
    """The JSON Schema of `overrides`, whole (its nested objects written in place)."""
    schema = InspectionOverrides.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {
                key: resolve(value)
                for key, value in node.items()
                if key != "title" and not (key == "default" and value is None)
            }
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
