"""Webhooks: events tenants subscribe to, and their delivery to the tenants' receivers.

Owns the event catalogue and publishing (events, which hears of audit records), endpoints, the log tenants
read (log), replays, signatures (signing), and the delivery machinery: one delivery (delivery), its HTTP
attempt (sender), where it reads and writes (store, batches).

Offers to the other domains: events (publish, the catalogue), endpoints, log, replay, delivery, store,
batches (run by the workers).
Internal: sender (only delivery, store and batches send; import-linter holds it).
May call: tenancy.organizations, jobs, audit, access, outbound, common.
"""
