"""The tenant lifecycle: every state has its exits, and a deleted tenant can only be restored."""

from __future__ import annotations

from appliance.models import TENANT_TRANSITIONS, TenantStatus


def test_every_state_is_in_the_transition_table() -> None:
    assert set(TENANT_TRANSITIONS) == set(TenantStatus)
    for state, targets in TENANT_TRANSITIONS.items():
        assert state not in targets


def test_a_deleted_tenant_can_only_be_restored() -> None:
    assert TENANT_TRANSITIONS[TenantStatus.DELETED] == {TenantStatus.ACTIVE}
    assert TenantStatus.DELETED in TENANT_TRANSITIONS[TenantStatus.SUSPENDED]
