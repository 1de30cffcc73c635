"""Every migration says whether the previous version can run beside it (expand) or not (contract)."""

from __future__ import annotations

from appliance.upgrade import schema


def test_every_migration_declares_its_phase() -> None:
    script = schema.scripts()
    revisions = list(script.walk_revisions())
    assert len(revisions) >= 13
    undeclared = [r.revision for r in revisions if getattr(r.module, "phase", None) not in schema.PHASES]
    assert undeclared == [], f"declare phase = 'expand' or 'contract' in {undeclared}"
    # 0009 put tables the previous version read with no tenant set under row-level security.
    assert schema.declared_phase(script, "0009") == "contract"
    assert schema.declared_phase(script, "0012") == "expand"


def test_the_pending_migrations_come_in_order_with_their_phases() -> None:
    script = schema.scripts()
    pending = schema.pending(script, "0008")
    assert [m.revision for m in pending][:4] == ["0009", "0010", "0011", "0012"]
    assert [m.phase for m in pending][:2] == ["contract", "expand"]
    assert pending[0].title.startswith("row-level security on every table with a tenant_id")
    assert schema.pending(script, script.get_current_head()) == []
