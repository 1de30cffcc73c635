"""The process supervisor: the one long-lived parent of every appliance process (standard library only)."""
