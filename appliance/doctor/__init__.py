"""Diagnostics for the admin and for a support ticket: the doctor's checks and the support bundle.

Offers: report (run every check, render the table or JSON), finding (Finding, Context), bundle (the
support bundle's .tar.gz) and scrub (secret values and patterns taken out of text). The checks live by what
they look at: checks (the host: settings, secret files, disk, certificate, backups), database_checks
(reachability, migrations, row-level security, the app role, the clock) and service_checks (Redis, the
queue, the supervisor). Nothing here imports the command line or the API: both call report.
"""
