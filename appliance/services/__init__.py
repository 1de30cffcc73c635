"""Domain logic: plain functions and classes that know no web, queue, CLI or TUI framework.

One package per domain (see each one's __init__ for what it owns and may call). The domains are layered,
each calling only those below it (import-linter holds it): monitoring; webhooks; tenancy and jobs (apart);
identity; limits; audit; access (who acts, with what permissions, in which tenant); and under them all
common and outbound.

A lower domain hears of a higher one's interest through a subscription, wired here so that it holds whatever
a program imports: the webhooks domain publishes the audit records whose action is an event
(appliance.services.audit.log.on_record).
"""

from appliance.services.webhooks import events as _webhook_events  # noqa: F401  (subscribes to audit records)
