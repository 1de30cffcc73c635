"""Tenancy: tenants and what lives inside them, and the operators who run the platform.

Owns tenants (lifecycle, the short-lived tenant directory), organizations, projects, memberships, members and
invitations, roles and their permissions, operators and the platform permissions, and what an operator sees
inside a tenant (contents).

Offers to the other domains: tenants, organizations (tenant_of), roles, memberships, operators
(normalize_email, Operator), platform_permissions, directory.TenantDirectory.
May call: identity, audit, common.
"""
