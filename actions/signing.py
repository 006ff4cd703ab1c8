"""How the business's endpoint can trust the customer id Handoff sends.

Every call carries X-Handoff-User-Id (the verified customer's id, absent for an anonymous one),
X-Handoff-Timestamp (Unix seconds) and X-Handoff-Signature: "sha256=" and the hex HMAC-SHA256,
keyed with the bot's secret key, of f"{timestamp}.{user_id}." followed by the request body
(empty for GET). The timestamp is signed so a captured request cannot be replayed later; the
body is signed so a refund's amount cannot be changed on the way.
"""

from __future__ import annotations

import hashlib
import hmac
import time

USER_HEADER = "X-Handoff-User-Id"
TIMESTAMP_HEADER = "X-Handoff-Timestamp"
SIGNATURE_HEADER = "X-Handoff-Signature"
# How old a signed request the demo shop accepts (and what we suggest to businesses).
MAX_AGE_SECONDS = 300


def signature(*, secret: str, timestamp: str, user_id: str, body: bytes) -> str:
    message = f"{timestamp}.{user_id}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(*, secret: str, user_id: str | None, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(
            secret=secret, timestamp=timestamp, user_id=user_id or "", body=body
        ),
    }
    if user_id:
        headers[USER_HEADER] = user_id
    return headers


def signature_valid(
    *, secret: str, timestamp: str, user_id: str, body: bytes, given: str, now: float | None = None
) -> bool:
    """What a business's server checks (the demo shop does): the signature matches and the
    timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > MAX_AGE_SECONDS:
        return False
    expected = signature(secret=secret, timestamp=timestamp, user_id=user_id, body=body)
    return hmac.compare_digest(expected, given or "")
