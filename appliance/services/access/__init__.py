"""Access: what every domain needs to know of a caller to act for them, and nothing more.

Owns who acts (actors: Actor, RequestInfo, the operator at the command line), what they may do (the platform
permissions of operators, platform_permissions; a tenant role's permissions, role_permissions) and in which
tenant, if it is active (directory: the short-lived tenant directory every request checks).

Offers to the other domains: actors, platform_permissions, role_permissions, directory.TenantDirectory.
May call: common.
"""
