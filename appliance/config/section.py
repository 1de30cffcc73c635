"""The base of every settings section: unknown keys are errors, field docstrings are the documentation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: unknown keys are errors, docstrings are the documentation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)
