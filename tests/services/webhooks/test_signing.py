"""Our signatures verify with the reference Standard Webhooks library, also both during a rotation."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from appliance.services.webhooks import events
from appliance.services.webhooks import signing as webhook_signing

BODY = events.render("project.created", dt.datetime.now(dt.UTC), {"id": str(uuid.uuid4()), "name": "Ünïcode"})


def test_a_new_secret_is_whsec_and_base64_of_24_bytes() -> None:
    secret = webhook_signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert secret != webhook_signing.new_secret()


def test_the_reference_library_verifies_our_signature() -> None:
    secret = webhook_signing.new_secret()
    msg_id = webhook_signing.webhook_id(uuid.uuid4())
    headers = webhook_signing.headers([secret], msg_id, BODY, dt.datetime.now(dt.UTC))
    assert headers["webhook-id"] == msg_id
    assert Webhook(secret).verify(BODY, headers)["data"]["name"] == "Ünïcode"
    # And it is the library's own signature, byte for byte.
    moment = dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), dt.UTC)
    assert headers["webhook-signature"] == Webhook(secret).sign(msg_id, moment, BODY)


def test_another_secret_or_a_changed_body_does_not_verify() -> None:
    secret = webhook_signing.new_secret()
    headers = webhook_signing.headers([secret], "msg_1", BODY, dt.datetime.now(dt.UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_signing.new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"project", b"tenant"), headers)


def test_during_a_rotation_both_the_old_and_the_new_secret_verify() -> None:
    old, new = webhook_signing.new_secret(), webhook_signing.new_secret()
    headers = webhook_signing.headers([new, old], "msg_2", BODY, dt.datetime.now(dt.UTC))
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert Webhook(old).verify(BODY, headers)
    assert Webhook(new).verify(BODY, headers)


def test_the_timestamp_is_the_time_of_the_attempt() -> None:
    """Receivers refuse a timestamp five minutes off: a retry a day later is signed anew, not replayed."""
    secret = webhook_signing.new_secret()
    stale = webhook_signing.headers([secret], "msg_3", BODY, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)


def test_a_secret_that_is_not_whsec_base64_is_refused() -> None:
    for bad in ("abc", "whsec_", "whsec_not base64!"):
        with pytest.raises(ValueError):
            webhook_signing.key_of(bad)
