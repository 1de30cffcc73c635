"""Identity: who is calling and how they prove it.

Owns accounts and their passwords (hashing, policy), sign-in and sign-out (auth), sessions and refresh-token
families, access tokens, API keys, two-factor authentication (mfa, totp), failed sign-in throttling, the
revocation cache, the rule for account addresses (emails), and the authenticator that builds the request's
Actor (access.actors).

Offers to the other domains: authenticator.Authenticator, auth (sign-in, LoginGuard), tokens, sessions,
passwords, api_keys, mfa, emails.normalize_email.
May call: limits (throttling), audit, access (actors, permissions, the tenant directory), common.
"""
