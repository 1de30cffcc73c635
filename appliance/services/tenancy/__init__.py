"""Tenancy: tenants and what lives inside them, and the operators who run the platform.

Owns tenants (their lifecycle), organizations, projects, memberships, members,
invitations (the tenant's side) and the invitee's answers to them (invitees), roles (their permissions are
read through access.role_permissions), operators, and what an operator sees inside a tenant (contents).

Offers to the other domains: tenants, organizations (tenant_of), roles, memberships, operators (Operator).
May call: identity, audit, access, common.
"""
