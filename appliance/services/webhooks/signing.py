"""Standard Webhooks signatures (standardwebhooks.com): secrets, the signed content, the three headers.

A secret is ``whsec_`` + the base64 of 24 random bytes (the specification asks for 24 to 64). A signature is
``v1,`` + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")); during a secret's rotation
each request carries one signature per live secret, space-separated, so that a receiver verifying with
either the old or the new secret accepts it. The timestamp is the time of the attempt (receivers refuse
one more than five minutes off), the id is the message's (the same on every attempt and replay, so that a
receiver can drop duplicates).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Sequence

PREFIX = "whsec_"
KEY_BYTES = 24


def new_secret() -> str:
    """A fresh ``whsec_`` secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret (ValueError for anything else)."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def webhook_id(message_id: uuid.UUID) -> str:
    """The ``webhook-id`` of a message: stable across attempts and replays."""
    return f"msg_{message_id.hex}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` under ``secret``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(live_secrets: Sequence[str], msg_id: str, body: bytes, now: dt.datetime) -> dict[str, str]:
    """The request headers of one attempt: id, timestamp (whole seconds) and one signature per secret."""
    if not live_secrets:
        raise ValueError("a webhook is signed with at least one secret")
    timestamp = math.floor(now.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in live_secrets),
        "content-type": "application/json",
    }
