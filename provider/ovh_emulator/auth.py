"""OVH's request signature, checked the way OVH's API checks what its `ovh` client signs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from .untrusted import parse_int

__all__ = [
    "DEFAULT_APPLICATION_KEY",
    "DEFAULT_APPLICATION_SECRET",
    "DEFAULT_CONSUMER_KEY",
    "MAX_CLOCK_SKEW_SECONDS",
    "AuthFailure",
    "Credentials",
    "check_request",
    "signature",
]

DEFAULT_APPLICATION_KEY = "emulator-application-key"
DEFAULT_APPLICATION_SECRET = "emulator-application-secret"
DEFAULT_CONSUMER_KEY = "emulator-consumer-key"
# OVH refuses a request whose timestamp is too far from its own clock; clients avoid it with GET /auth/time.
MAX_CLOCK_SKEW_SECONDS = 180


@dataclass(frozen=True)
class Credentials:
    application_key: str = DEFAULT_APPLICATION_KEY
    application_secret: str = DEFAULT_APPLICATION_SECRET
    consumer_key: str = DEFAULT_CONSUMER_KEY


@dataclass(frozen=True)
class AuthFailure:
    """A refusal in the shape of OVH's authentication layer: `{"errorCode", "httpCode", "message"}`."""

    status: int
    error_code: str
    message: str

    @property
    def body(self) -> dict[str, str]:
        reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
        return {
            "errorCode": self.error_code,
            "httpCode": f"{self.status} {reasons[self.status]}",
            "message": self.message,
        }


def signature(
    application_secret: str, consumer_key: str, method: str, url: str, body: str, timestamp: str
) -> str:
    """`$1$` + SHA-1 of the secret, consumer key, method, full URL, body and timestamp joined by `+`."""
    payload = "+".join([application_secret, consumer_key, method.upper(), url, body, timestamp])
    return "$1$" + hashlib.sha1(payload.encode("utf-8")).hexdigest()


INVALID_KEY = AuthFailure(403, "INVALID_KEY", "This application key is invalid")
INVALID_CREDENTIAL = AuthFailure(403, "INVALID_CREDENTIAL", "This credential is not valid")
NOT_AUTHENTICATED = AuthFailure(401, "NOT_AUTHENTICATED", "You must login first")
INVALID_SIGNATURE = AuthFailure(400, "INVALID_SIGNATURE", "Invalid signature")
QUERY_TIME_OUT = AuthFailure(400, "QUERY_TIME_OUT", "Query out of time")


def check_request(
    credentials: Credentials, headers: Mapping[str, str], method: str, url: str, body: str, now: int
) -> AuthFailure | None:
    """Why OVH would refuse this request, or None when it is properly signed by a known consumer."""
    application_key = headers.get("X-Ovh-Application")
    if application_key != credentials.application_key:
        return INVALID_KEY
    consumer_key = headers.get("X-Ovh-Consumer")
    timestamp = headers.get("X-Ovh-Timestamp")
    given = headers.get("X-Ovh-Signature")
    if not consumer_key or not timestamp or not given:
        return NOT_AUTHENTICATED
    if consumer_key != credentials.consumer_key:
        return INVALID_CREDENTIAL
    sent_at = parse_int(timestamp)
    if sent_at is None or abs(sent_at - now) > MAX_CLOCK_SKEW_SECONDS:
        return QUERY_TIME_OUT
    expected = signature(credentials.application_secret, consumer_key, method, url, body, timestamp)
    if not hmac.compare_digest(expected, given):
        return INVALID_SIGNATURE
    return None
