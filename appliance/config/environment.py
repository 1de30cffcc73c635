"""Where settings come from besides the file: the ``APPLIANCE_...`` environment variables, lists included."""

from __future__ import annotations

from typing import Any, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource


def is_list_setting(annotation: Any) -> bool:
    """Whether a setting holds a list (``tuple[str, ...]``): from the environment, a JSON array or
    comma-separated values."""
    return get_origin(annotation) in (list, tuple, set, frozenset)


class EnvironmentSource(EnvSettingsSource):
    """``APPLIANCE_...`` variables, where a list may also be written as comma-separated values
    (``APPLIANCE_OUTBOUND__ALLOW_NETWORKS=10.0.0.0/8,192.168.0.0/16``) besides a JSON array
    (``["10.0.0.0/8"]``), as operators write lists in a shell or a systemd unit."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if (
            isinstance(value, str)
            and field is not None
            and is_list_setting(field.annotation)
            and not value.lstrip().startswith("[")
        ):
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().decode_complex_value(field_name, field, value)

    def explode_env_vars(self, field_name: str, field: FieldInfo, env_vars: Any) -> dict[str, Any]:
        # A section's list set to "" (skipped by the decoding above) is the empty list.
        exploded = super().explode_env_vars(field_name, field, env_vars)
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for key, value in exploded.items():
                inner = model.model_fields.get(key)
                if value == "" and inner is not None and is_list_setting(inner.annotation):
                    exploded[key] = []
        return exploded
