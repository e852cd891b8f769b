"""Field markers shared by the config sections."""

from __future__ import annotations

from typing import Any

from pydantic import Field

DATA_MARK = "affects_data"
SECRET_MARK = "secret"


def data_field(default: Any = None, **kwargs: Any) -> Any:
    """A config field that changes preprocessing, so it is part of the prepared-data cache key."""
    extra = kwargs.pop("json_schema_extra", None) or {}
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(json_schema_extra={**extra, DATA_MARK: True}, **kwargs)


def secret_field(default: Any = None, **kwargs: Any) -> Any:
    """A config field holding a secret: redacted when the config is saved or logged."""
    return Field(default, json_schema_extra={SECRET_MARK: True}, **kwargs)
