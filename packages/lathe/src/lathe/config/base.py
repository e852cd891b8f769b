"""The pydantic base every config model (core sections and plugins' models) derives from."""

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """Unknown keys are errors; a validated config is never changed afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
