"""Forge Appliance: a self-hosted, multi-tenant platform core for on-prem servers."""

__version__ = "0.2.0"
