"""How the business's endpoint can trust the customer id Handoff sends.

Every call carries X-Handoff-User-Id (the verified customer's id, absent for an anonymous one),
X-Handoff-Timestamp (Unix seconds) and X-Handoff-Signature: "sha256=" and the hex HMAC-SHA256,
keyed with the bot's secret key, of f"{timestamp}.{user_id}." followed by the request body
(empty for GET). The timestamp is signed so a captured request cannot be replayed later; the
body is signed so a refund's amount cannot be changed on the way.

A call that may be sent again for the same logical request (a turn retried after a crash, a
confirmed card) also carries `Idempotency-Key: <key>`, as payment APIs do (Stripe's header of
that name): the endpoint runs the first request with a key and answers its result to any
repeat. The key is signed too, or a man in the middle could change it and make a repeat run
twice. A signature over a key signs f"v2.{timestamp}.{key}.{user_id}." followed by the body:
 - calls without a key keep the first format, so an endpoint that never reads the header
   verifies them as before;
 - the "v2." prefix keeps the two formats apart: a first-format message starts with the
   timestamp, which is a number, so no signature of one format verifies as the other (with
   the key placed after the user id, a customer "jane.doe" signed without a key would verify
   as the customer "jane" with the key "doe");
 - the key comes before the user id and may not contain a dot, so it ends at its first dot.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

USER_HEADER = "X-Handoff-User-Id"
TIMESTAMP_HEADER = "X-Handoff-Timestamp"
SIGNATURE_HEADER = "X-Handoff-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Letters, digits, "_" and "-", at most 255 (Stripe's limit): no dot, which ends the key in the
# signed message, and nothing a proxy could rewrite.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,255}")
# How old a signed request the demo shop accepts (and what we suggest to businesses).
MAX_AGE_SECONDS = 300


def idempotency_key_check(key: str) -> str:
    """`key` if it may be sent as an Idempotency-Key; ValueError saying why if not."""
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(f"An idempotency key is 1-255 letters, digits, '_' or '-'; got {key!r}.")
    return key


def signature(
    *, secret: str, timestamp: str, user_id: str, body: bytes, idempotency_key: str = ""
) -> str:
    if idempotency_key:
        prefix = f"v2.{timestamp}.{idempotency_key}.{user_id}."
    else:
        prefix = f"{timestamp}.{user_id}."
    message = prefix.encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    *, secret: str, user_id: str | None, body: bytes, idempotency_key: str | None = None
) -> dict[str, str]:
    """The headers that sign a call; with `idempotency_key`, its Idempotency-Key header too
    (ValueError for a key that may not be sent, see IDEMPOTENCY_KEY)."""
    if idempotency_key is not None:
        idempotency_key_check(idempotency_key)
    timestamp = str(int(time.time()))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(
            secret=secret,
            timestamp=timestamp,
            user_id=user_id or "",
            body=body,
            idempotency_key=idempotency_key or "",
        ),
    }
    if user_id:
        headers[USER_HEADER] = user_id
    if idempotency_key:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return headers


def signature_valid(
    *,
    secret: str,
    timestamp: str,
    user_id: str,
    body: bytes,
    given: str,
    idempotency_key: str = "",
    now: float | None = None,
) -> bool:
    """What a business's server checks (the demo shop does): the signature matches and the
    timestamp is recent. `idempotency_key` is the request's Idempotency-Key header ("" when it
    has none): a key added, removed or changed on the way does not verify."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > MAX_AGE_SECONDS:
        return False
    if idempotency_key and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        return False
    expected = signature(
        secret=secret,
        timestamp=timestamp,
        user_id=user_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    return hmac.compare_digest(expected, given or "")
