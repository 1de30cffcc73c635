"""Deliveries to real receivers on loopback ports, on both databases: what each kind of receiver makes of a
delivery (verified, failing then recovering, hanging, redirecting, a body without end, 410, 429/503 with
Retry-After, five days of failures), the address guard, a name that does not resolve, and publishing."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
from typing import Any

import pytest
from sqlalchemy import select

from appliance.db.session import Database
from appliance.errors import InvalidInput
from appliance.models import Job, Tenant, WebhookDelivery, WebhookMessage
from appliance.services.jobs import durable as jobs
from appliance.services.outbound import guard as outbound
from appliance.services.webhooks import delivery as webhook_delivery
from appliance.services.webhooks import endpoints as webhook_endpoints
from appliance.services.webhooks import events
from appliance.services.webhooks import sender as webhook_sender
from tests.receivers import Receiver, Reply, verifying
from tests.services.webhooks.harness import T0, Harness, config


@pytest.fixture
def harness(db: Database) -> Harness:
    with db.session_scope() as session:
        tenant = Tenant(slug="acme", name="Acme")
        session.add(tenant)
        session.flush()
        return Harness(db, tenant.id)


# --------------------------------------------------------------------------- receivers


def test_a_verifying_receiver_accepts_the_delivery(harness: Harness) -> None:
    seen: list[dict[str, Any]] = []
    secret = ""
    with Receiver(verifying(lambda: secret, seen)) as receiver:
        endpoint = harness.endpoint(receiver.url)
        secret = endpoint.secret
        (delivery,) = harness.publish(id="p1", name="Rocket")
        assert harness.run(delivery) == {"status": 204, "attempt": 1}
    assert len(seen) == 1
    payload = seen[0]["payload"]
    assert payload["type"] == "project.created"
    assert payload["data"] == {"id": "p1", "name": "Rocket"}
    assert payload["timestamp"].endswith("Z")
    assert seen[0]["id"] == f"msg_{delivery.message_id.hex}"
    assert harness.delivery(delivery.id).state == "succeeded"
    (attempt,) = harness.attempts(delivery.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.latency_ms is not None
    assert attempt.latency_ms > 0


def test_a_failing_receiver_is_retried_on_the_schedule_until_it_recovers(harness: Harness) -> None:
    def respond(_got: Any, n: int) -> Reply:
        return Reply(500, body=b"database down") if n <= 2 else Reply(200, body=b"ok")

    with Receiver(respond) as receiver:
        endpoint = harness.endpoint(receiver.url)
        (delivery,) = harness.publish(id="p1")
        first = harness.run(delivery, 1)
        assert isinstance(first, jobs.RetryLater)
        assert first.delay is not None
        assert 4.5 <= first.delay <= 5.5  # 5 s, jitter 10 %
        assert harness.delivery(delivery.id).state == "pending"
        assert harness.get_endpoint(endpoint.id).failing_since is not None
        second = harness.run(delivery, 2)
        assert isinstance(second, jobs.RetryLater)
        assert second.delay is not None
        assert 270 <= second.delay <= 330  # 5 min
        assert harness.run(delivery, 3) == {"status": 200, "attempt": 3}
        ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {f"msg_{delivery.message_id.hex}"}
    log = harness.attempts(delivery.id)
    assert [(a.attempt, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 200)]
    assert log[0].response_excerpt == "database down"
    assert log[0].error == "the receiver answered 500"
    assert harness.get_endpoint(endpoint.id).failing_since is None
    assert harness.delivery(delivery.id).state == "succeeded"


def test_the_last_attempt_failing_fails_the_delivery(harness: Harness) -> None:
    with Receiver(lambda _g, _n: Reply(500)) as receiver:
        harness.endpoint(receiver.url)
        (delivery,) = harness.publish()
        outcome = harness.run(delivery, events.DELIVER.max_attempts)
    assert isinstance(outcome, jobs.PermanentFailure)
    assert harness.delivery(delivery.id).state == "failed"


def test_a_hanging_receiver_times_out_and_the_other_deliveries_go_on(harness: Harness) -> None:
    finished: list[str] = []
    with Receiver(lambda _g, _n: Reply(hang=True)) as hanging, Receiver() as quick:
        harness.endpoint(hanging.url)
        harness.endpoint(quick.url)
        deliveries = harness.publish()
        by_url = {harness.get_endpoint(d.endpoint_id).url: d for d in deliveries}

        async def both() -> tuple[Any, Any]:
            async def one(name: str, delivery: WebhookDelivery) -> Any:
                outcome = await harness.attempt(delivery, cfg=config(timeout=1.0))
                finished.append(name)
                return outcome

            return await asyncio.gather(one("hanging", by_url[hanging.url]), one("quick", by_url[quick.url]))

        hung, done = asyncio.run(both())
    assert finished == ["quick", "hanging"]
    assert done == {"status": 204, "attempt": 1}
    assert isinstance(hung, jobs.RetryLater)
    (attempt,) = harness.attempts(by_url[hanging.url].id)
    assert (attempt.status_code, attempt.error) == (None, "no answer within 1 s")


def test_a_redirect_is_not_followed(harness: Harness) -> None:
    with Receiver() as elsewhere:
        with Receiver(lambda _g, _n: Reply(302, headers={"Location": elsewhere.url})) as redirecting:
            harness.endpoint(redirecting.url)
            (delivery,) = harness.publish()
            outcome = harness.run(delivery)
        assert elsewhere.count() == 0
    assert isinstance(outcome, jobs.RetryLater)
    (attempt,) = harness.attempts(delivery.id)
    assert attempt.status_code == 302
    assert attempt.error == f"redirects are not followed (Location: {elsewhere.url})"


def test_a_body_without_end_is_read_up_to_the_limit(harness: Harness) -> None:
    with Receiver(lambda _g, _n: Reply(200, endless=True)) as huge:
        harness.endpoint(huge.url)
        (delivery,) = harness.publish()
        outcome = harness.run(delivery, cfg=config(timeout=30.0, max_bytes=100_000))
    assert outcome == {"status": 200, "attempt": 1}
    (attempt,) = harness.attempts(delivery.id)
    assert attempt.error is None
    assert attempt.response_excerpt == "x" * webhook_sender.EXCERPT_CHARS


def test_410_disables_the_endpoint_and_tells_the_other_endpoints(harness: Harness) -> None:
    with Receiver(lambda _g, _n: Reply(410)) as gone, Receiver() as other:
        endpoint = harness.endpoint(gone.url)
        harness.endpoint(other.url, event_types=["webhook_endpoint.disabled"])
        (delivery,) = harness.publish()  # the other endpoint does not take project events
        outcome = harness.run(delivery)
    assert isinstance(outcome, jobs.PermanentFailure)
    assert harness.delivery(delivery.id).state == "failed"
    disabled = harness.get_endpoint(endpoint.id)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "the receiver answered 410 Gone")
    (notice,) = harness.messages("webhook_endpoint.disabled")
    assert str(endpoint.id) in notice.body
    assert "410 Gone" in notice.body


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured(harness: Harness, status: int) -> None:
    with Receiver(lambda _g, _n: Reply(status, headers={"Retry-After": "120"})) as busy:
        harness.endpoint(busy.url)
        (delivery,) = harness.publish()
        outcome = harness.run(delivery, now=lambda: T0)
    assert isinstance(outcome, jobs.RetryLater)
    assert outcome.delay == 120
    assert harness.delivery(delivery.id).next_attempt_at == T0 + dt.timedelta(seconds=120)


def test_retry_after_as_a_date_is_honoured_and_clamped(harness: Harness) -> None:
    date = email.utils.format_datetime(T0 + dt.timedelta(minutes=10), usegmt=True)
    answers = iter([date, "9999999"])
    with Receiver(lambda _g, _n: Reply(503, headers={"Retry-After": next(answers)})) as busy:
        harness.endpoint(busy.url)
        (delivery,) = harness.publish()
        first = harness.run(delivery, 1, now=lambda: T0)
        second = harness.run(delivery, 2, now=lambda: T0)
    assert isinstance(first, jobs.RetryLater)
    assert first.delay == 600
    assert isinstance(second, jobs.RetryLater)
    assert second.delay == webhook_delivery.RETRY_AFTER_RANGE[1]


def test_an_endpoint_failing_for_five_days_is_disabled(harness: Harness) -> None:
    with Receiver(lambda _g, _n: Reply(500)) as failing, Receiver() as other:
        endpoint = harness.endpoint(failing.url, event_types=["project.created"])
        harness.endpoint(other.url, event_types=["webhook_endpoint.disabled"])
        first, second = harness.publish(), harness.publish()
        assert isinstance(harness.run(first[0], 1, now=lambda: T0), jobs.RetryLater)
        almost = T0 + dt.timedelta(days=5) - dt.timedelta(seconds=1)
        assert isinstance(harness.run(second[0], 1, now=lambda: almost), jobs.RetryLater)
        assert harness.get_endpoint(endpoint.id).enabled
        later = T0 + dt.timedelta(days=5)
        assert isinstance(harness.run(first[0], 2, now=lambda: later), jobs.PermanentFailure)
    disabled = harness.get_endpoint(endpoint.id)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "every delivery failed for 5 days")
    assert len(harness.messages("webhook_endpoint.disabled")) == 1
    # The other delivery to it fails when its turn comes, without a request.
    count = failing.count()
    assert isinstance(harness.run(second[0], 2), jobs.PermanentFailure)
    assert failing.count() == count
    assert harness.delivery(second[0].id).state == "failed"


# --------------------------------------------------------------------------- addresses


def test_a_loopback_receiver_is_refused_without_the_allow_list(harness: Harness) -> None:
    with Receiver() as receiver:
        with pytest.raises(InvalidInput) as refused, harness.session() as session:
            webhook_endpoints.create(
                session, harness.actor, url=receiver.url, policy=outbound.AddressPolicy()
            )
        assert refused.value.code == "INVALID_URL"
        assert "127.0.0.1 is a loopback address" in refused.value.message
        # Allowed when it was made, refused at the call: the guard holds at send time too.
        harness.endpoint(receiver.url)
        (delivery,) = harness.publish()
        outcome = harness.run(delivery, cfg=config(policy=outbound.AddressPolicy()))
        assert receiver.count() == 0
    assert isinstance(outcome, jobs.RetryLater)
    (attempt,) = harness.attempts(delivery.id)
    assert attempt.error == (
        "refused: 127.0.0.1 is a loopback address, which the appliance calls only when the setting "
        "outbound.allow_networks includes it"
    )


def test_a_name_that_does_not_resolve_is_a_failed_attempt(harness: Harness) -> None:
    harness.endpoint("http://no-such-receiver.invalid/hook")
    (delivery,) = harness.publish()
    outcome = harness.run(delivery)
    assert isinstance(outcome, jobs.RetryLater)
    (attempt,) = harness.attempts(delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("no-such-receiver.invalid does not resolve")


# --------------------------------------------------------------------------- publishing


def test_publishing_with_no_matching_endpoint_writes_nothing(harness: Harness) -> None:
    with harness.session() as session:
        assert (
            events.publish(session, tenant_id=harness.tenant_id, event_type="project.created", data={})
            is None
        )
    harness.endpoint("https://example.com/hook", event_types=["project.deleted"])
    harness.endpoint("https://example.com/off", enabled=False)
    with harness.session() as session:
        assert (
            events.publish(session, tenant_id=harness.tenant_id, event_type="project.created", data={})
            is None
        )
        assert session.scalars(select(WebhookMessage)).all() == []
        (kept,) = [
            events.publish(session, tenant_id=harness.tenant_id, event_type="project.deleted", data={})
        ]
        assert kept is not None
    with harness.db.session_scope() as session:
        assert len(session.scalars(select(Job).where(Job.kind == events.DELIVER.name)).all()) == 1


def test_a_replayed_delivery_stops_its_older_job(harness: Harness) -> None:
    from appliance.services.webhooks import replay as webhook_replay

    with Receiver() as receiver:
        harness.endpoint(receiver.url)
        (delivery,) = harness.publish()
        with harness.session() as session:
            webhook_replay.replay_message(session, harness.actor, delivery.message_id)
        assert harness.run(delivery) == {"skipped": "a replay superseded this job"}
        assert receiver.count() == 0
        assert harness.run(harness.delivery(delivery.id)) == {"status": 204, "attempt": 1}


def test_during_a_rotation_a_receiver_with_the_old_secret_still_verifies(harness: Harness) -> None:
    seen: list[dict[str, Any]] = []
    old = ""
    with Receiver(verifying(lambda: old, seen)) as receiver:
        endpoint = harness.endpoint(receiver.url)
        old = endpoint.secret
        with harness.session() as session:
            new = webhook_endpoints.rotate_secret(session, harness.actor, endpoint.id).secret
        (delivery,) = harness.publish()
        assert harness.run(delivery) == {"status": 204, "attempt": 1}
        signatures = receiver.received[0].headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert new != old
    assert len(seen) == 1
