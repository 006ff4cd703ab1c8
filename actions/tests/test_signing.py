"""The signature a business checks (actions.signing): with an Idempotency-Key, the key is signed
too, in its own format; without one, the first format verifies as it always did."""

import hashlib
import hmac
import time

import pytest

from actions.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_valid,
    signed_headers,
)

SECRET = "bot-secret"
BODY = b'{"order_id": "1235", "amount": 30}'


def _valid(headers, *, user_id="vera-42", body=BODY, key=None, secret=SECRET):
    return signature_valid(
        secret=secret,
        timestamp=headers[TIMESTAMP_HEADER],
        user_id=user_id,
        body=body,
        given=headers[SIGNATURE_HEADER],
        idempotency_key=headers.get(IDEMPOTENCY_HEADER, "") if key is None else key,
    )


def test_a_call_without_a_key_keeps_the_first_format():
    headers = signed_headers(secret=SECRET, user_id="vera-42", body=BODY)

    assert IDEMPOTENCY_HEADER not in headers
    timestamp = headers[TIMESTAMP_HEADER]
    # What a business that never heard of keys computes: unchanged.
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.vera-42.".encode() + BODY, hashlib.sha256
    ).hexdigest()
    assert headers[SIGNATURE_HEADER] == "sha256=" + expected
    assert _valid(headers)


def test_a_key_is_sent_and_signed_in_the_v2_format():
    headers = signed_headers(secret=SECRET, user_id="vera-42", body=BODY, idempotency_key="msg-7-1")

    assert headers[IDEMPOTENCY_HEADER] == "msg-7-1"
    timestamp = headers[TIMESTAMP_HEADER]
    expected = hmac.new(
        SECRET.encode(), f"v2.{timestamp}.msg-7-1.vera-42.".encode() + BODY, hashlib.sha256
    ).hexdigest()
    assert headers[SIGNATURE_HEADER] == "sha256=" + expected
    assert _valid(headers)


@pytest.mark.parametrize("changed", ["msg-7-2", "msg-8-1", "msg-7-1x", ""])
def test_a_key_changed_or_removed_on_the_way_does_not_verify(changed):
    headers = signed_headers(secret=SECRET, user_id="vera-42", body=BODY, idempotency_key="msg-7-1")

    assert not _valid(headers, key=changed)


def test_a_key_added_to_a_call_signed_without_one_does_not_verify():
    headers = signed_headers(secret=SECRET, user_id="vera-42", body=BODY)

    assert not _valid(headers, key="msg-7-1")


def test_the_formats_cannot_be_mistaken_for_each_other():
    # Were the key signed after the user id, "jane.doe" without a key and "jane" with the key
    # "doe" would sign the same text: a customer swapped for another.
    headers = signed_headers(secret=SECRET, user_id="jane.doe", body=BODY)

    assert _valid(headers, user_id="jane.doe")
    assert not _valid(headers, user_id="jane", key="doe")
    assert not _valid(headers, user_id="doe", key="jane")


@pytest.mark.parametrize("bad", ["", "has.dot", "spaces here", "é", "x" * 256, "a\nb"])
def test_a_key_that_may_not_be_sent_is_refused_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="An idempotency key is 1-255 letters"):
        signed_headers(secret=SECRET, user_id="vera-42", body=BODY, idempotency_key=bad)


def test_a_key_still_needs_a_recent_timestamp(monkeypatch):
    headers = signed_headers(secret=SECRET, user_id="vera-42", body=BODY, idempotency_key="call-3")
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)

    assert not _valid(headers)
