"""Outbound: every call the appliance makes to an address a tenant gave (webhooks, probes), made safe.

Owns the server-side request forgery guard (guard: URLs checked when given, addresses checked at call time)
and the HTTP clients of an event loop (clients).

Offers to the other domains: guard, clients.Clients.
May call: nothing else in services.
"""
