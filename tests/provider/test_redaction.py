"""The one redaction every message goes through: what it masks, and what it leaves readable."""

from __future__ import annotations

import pytest
from ovh_byoi.errors import ApiRefusedError, ByoiError, TaskFailedError
from ovh_byoi.redaction import redact, url_carries_secrets

S3 = (
    "https://s3.gra.io.cloud.ovh.net/images/debian.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fgra%2Fs3%2Faws4_request&X-Amz-Signature=9f8e7d6c5b4a39281706"
)
SWIFT = (
    "https://storage.gra.cloud.ovh.net/v1/AUTH_x/images/a.raw?temp_url_sig=da39a3ee5e6b&temp_url_expires=1"
)


CASES = [
    (
        f"downloading {S3} failed",
        "debian.qcow2?X-Amz-Algorithm=***&X-Amz-Credential=***&X-Amz-Signature=***",
        ("AKIAEXAMPLE", "9f8e7d6c5b4a39281706"),
    ),
    (SWIFT, "a.raw?temp_url_sig=***&temp_url_expires=***", ("da39a3ee5e6b",)),
    (
        "https://alice:pw-0a9b8c@images.example.net/a.raw",
        "https://***@images.example.net/a.raw",
        ("pw-0a9b8c",),
    ),
    # requests quotes the path alone.
    (
        "retries exceeded with url: /a.raw?sig=0a9b8c7d6e (Caused by",
        "/a.raw?sig=*** (Caused",
        ("0a9b8c7d6e",),
    ),
    (
        "Reinstall ns1 with https://h/a.raw?t=0a9b8c7d6e? Everything",
        "a.raw?t=***? Everything",
        ("0a9b8c7d6e",),
    ),
]


@pytest.mark.parametrize(("text", "shown", "hidden"), CASES)
def test_urls_keep_their_shape_and_lose_their_secrets(text: str, shown: str, hidden: tuple[str, ...]) -> None:
    redacted = redact(text)
    assert shown in redacted
    assert not [secret for secret in hidden if secret in redacted]
    assert redact(redacted) == redacted


def test_header_values_are_masked_as_written_and_as_quoted() -> None:
    text = "Invalid header value b'Bearer tok\\n-1' and Bearer tok\n-1 again"
    assert redact(text, ["Bearer tok\n-1"]) == "Invalid header value b'***' and *** again"


def test_plain_text_and_plain_urls_are_left_alone() -> None:
    text = (
        "OVH says: Is the image at https://images.example.net/debian-12.qcow2 reachable? Task 4200001 failed."
    )
    assert redact(text) == text
    assert not url_carries_secrets("https://images.example.net/debian-12.qcow2")
    assert url_carries_secrets(S3) and url_carries_secrets(SWIFT)


def test_every_error_message_is_redacted_when_it_is_built() -> None:
    errors: list[ByoiError] = [
        ByoiError(f"cannot download {S3}"),
        TaskFailedError("ns1", 42, "customerError", [f"Could not download image located: {SWIFT}"]),
        ApiRefusedError(service_name="ns1", action="start a reinstall", ovh_message=f"bad imageURL {S3}"),
    ]
    for error in errors:
        assert "9f8e7d6c5b4a39281706" not in str(error) and "da39a3ee5e6b" not in str(error)
    assert "X-Amz-Signature=***" in str(errors[0])
    assert "tok-55" not in str(ByoiError("header Bearer tok-55 refused").redacted(["Bearer tok-55"]))
