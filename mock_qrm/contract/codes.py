"""The closed sets of words the API speaks: delivery states, attempt triggers and outcomes,
and the QRM routes a fault can be put on.

Plain enums and tuples, no pydantic: the command line checks its arguments against
them before it sends anything, and must start in milliseconds.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED})


class Trigger(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    INTERRUPTED = "interrupted"


CERTIFICATE_FAILED = "certificate verify failed for"
"""How the `errorDetail` of a `tls` failure starts when the receiver's certificate was not
trusted (`certificate verify failed for HOST: self-signed certificate`, SPEC 9.7): clients
tell a certificate failure from other TLS failures by it."""


FAULT_ROUTES = (
    "POST /api/v1/auth/login",
    "GET /api/v1/reports",
    "GET /api/v1/reports/{id}",
    "GET /files/reports/{id}.pdf",
)
"""The QRM routes a receiver calls back, which faults can be put on."""
