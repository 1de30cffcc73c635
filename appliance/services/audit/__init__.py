"""Audit: the tenants' and the platform's tamper-evident logs (hash chains).

Owns appending and reading records (log), verifying the chains (verify), which chain a session may touch
(scope), how a record is written down and hashed (format: changing it changes every hash), and naming who
acted in words a reader knows (actors).

Offers to the other domains: log (record, query, on_record), verify (verify, verify_all, chains),
format.rfc3339, actors.
May call: access, common. Higher domains hear of records through log.on_record (webhooks publishes the audit
actions that are events).
"""
