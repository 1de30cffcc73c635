"""SQLAlchemy tables, one module per aggregate; importing this package registers them all."""

from appliance.db import tenancy
from appliance.models.api_key import ApiKey
from appliance.models.app_monitoring import (
    APP_STATUS_TRANSITIONS,
    App,
    AppCheck,
    AppCheckHourly,
    AppIncident,
    AppKind,
    AppStatus,
)
from appliance.models.audit import GENESIS_HASH, AuditLog
from appliance.models.idempotency import IdempotencyKey
from appliance.models.invitation import INVITATION_TRANSITIONS, Invitation, InvitationState
from appliance.models.job import JOB_TRANSITIONS, Job, JobState
from appliance.models.membership import Membership
from appliance.models.mfa import MfaFactor, RecoveryCode
from appliance.models.organization import Organization
from appliance.models.platform_setting import PlatformSetting
from appliance.models.project import Project
from appliance.models.refresh_token import RefreshToken
from appliance.models.role import ALL_PERMISSIONS, BUILTIN_ROLES, BuiltinRole, Role
from appliance.models.system import WorkerHeartbeat
from appliance.models.tenant import (
    DEFAULT_PURGE_GRACE,
    TENANT_TRANSITIONS,
    Tenant,
    TenantPlan,
    TenantStatus,
)
from appliance.models.user import User
from appliance.models.webhook import (
    DELIVERY_TRANSITIONS,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

# Every session of the process filters tenant-owned queries by the session's tenant (defence in depth
# under PostgreSQL's row-level security; the only isolation on SQLite).
tenancy.install_orm_filter()

__all__ = [
    "ALL_PERMISSIONS",
    "APP_STATUS_TRANSITIONS",
    "BUILTIN_ROLES",
    "DEFAULT_PURGE_GRACE",
    "DELIVERY_TRANSITIONS",
    "GENESIS_HASH",
    "INVITATION_TRANSITIONS",
    "JOB_TRANSITIONS",
    "TENANT_TRANSITIONS",
    "ApiKey",
    "App",
    "AppCheck",
    "AppCheckHourly",
    "AppIncident",
    "AppKind",
    "AppStatus",
    "AuditLog",
    "BuiltinRole",
    "DeliveryState",
    "IdempotencyKey",
    "Invitation",
    "InvitationState",
    "Job",
    "JobState",
    "Membership",
    "MfaFactor",
    "Organization",
    "PlatformSetting",
    "Project",
    "RecoveryCode",
    "RefreshToken",
    "Role",
    "Tenant",
    "TenantPlan",
    "TenantStatus",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WorkerHeartbeat",
]
