"""Standard Webhooks signing (https://www.standardwebhooks.com/, spec v1). Pure, no I/O.

Every request carries `webhook-id` (the event's, the same on every retry, so a receiver
de-duplicates on it), `webhook-timestamp` (Unix seconds of this attempt: receivers refuse
old ones, so a retry is signed afresh) and `webhook-signature`: `v1,<base64 HMAC-SHA256>`
over `<id>.<timestamp>.<body>`, keyed with the secret's bytes (`whsec_<base64>`). During a
secret rotation the signature header holds one signature per secret, space-separated, and a
receiver accepts the request if any of them verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from collections.abc import Sequence

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec asks for 24 to 64 random bytes


class SecretError(ValueError):
    """A signing secret is not in the whsec_<base64> form, or too short."""


def secret_bytes(text: str) -> bytes:
    if not text.startswith(PREFIX):
        raise SecretError(f"a signing secret must start with {PREFIX!r} (whsec_<base64>)")
    try:
        key = base64.b64decode(text[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError) as e:
        raise SecretError(f"the part after {PREFIX!r} must be base64 ({e})") from e
    if len(key) < MIN_SECRET_BYTES:
        raise SecretError(f"a signing secret must hold at least {MIN_SECRET_BYTES} bytes, "
                          f"this one {len(key)}")
    return key


def new_secret() -> str:
    """A fresh secret of 32 random bytes, in the whsec_ form."""
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers (and the content type) for one attempt."""
    if not secrets:
        raise SecretError("no signing secret: a webhook is never sent unsigned")
    signatures = " ".join(signature(secret_bytes(s), webhook_id, timestamp, body) for s in secrets)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures, "content-type": "application/json"}
