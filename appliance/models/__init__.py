"""SQLAlchemy tables, one module per aggregate; importing this package registers them all."""

from appliance.models.system import WorkerHeartbeat
from appliance.models.tenant import Tenant, TenantPlan, TenantStatus
from appliance.models.user import User

__all__ = ["Tenant", "TenantPlan", "TenantStatus", "User", "WorkerHeartbeat"]
