"""Audit: the tenants' and the platform's tamper-evident logs (hash chains).

Owns appending records (log), how a record is written down and hashed (format: changing it changes every
hash), and naming who acted in words a reader knows (actors).

Offers to the other domains: log (record, verify, query), format.rfc, actors.
May call: access, common. Higher domains hear of records through log.on_record (webhooks publishes the audit
actions that are events).
"""
