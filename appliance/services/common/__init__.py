"""Common: the small pieces every domain shares and none owns, each one gate or one mechanism.

pagination (cursors: one decoder for every list), pages (newest-first keyset pages of the webhook tables and
of jobs), text (the one rule for stored text), idempotency (idempotency keys scoped by tenant and principal),
refresher (the thread that refreshes in-process caches), batcher (group commit on an event loop),
driver_connection (driver connections kept per thread).
May call: nothing else in services.
"""
