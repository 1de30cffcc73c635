"""Monitoring: tenants' applications watched by the appliance.

Owns the monitored apps (apps), one probe of an app (probes), the check results and their hourly roll-ups
(checks), each app's status machine and incidents (status), and the monitor's database work (monitor).

Offers to the other domains: apps, checks, status, probes, monitor (run by the monitor worker).
May call: webhooks.events (app.down, app.up), tenancy.organizations, audit, access, outbound, common.
"""
