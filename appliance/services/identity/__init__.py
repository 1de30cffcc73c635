"""Identity: who is calling and how they prove it.

Owns accounts and their passwords (hashing, policy), sign-in and sign-out (auth), sessions and refresh-token
families, access tokens, API keys, two-factor authentication (mfa, totp), failed sign-in throttling, the
revocation cache, and the request's Actor (actors) with the authenticator that builds it.

Offers to the other domains: actors (Actor, RequestInfo, cli_operator), authenticator.Authenticator,
auth (sign-in, LoginGuard), tokens, sessions, passwords, api_keys, mfa.
May call: audit, limits (throttling), tenancy (roles, platform permissions, operators' e-mail rule, the
tenant directory), common.
"""
