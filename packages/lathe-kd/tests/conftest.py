from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def kd_cfg(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Validated configs with kd enabled (tiny model, chat data written to tmp_path)."""
    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.testing import base_config

    def make(**overrides: Any):  # type: ignore[no-untyped-def]
        data = {**base_config(tmp_path), "plugins": ["kd"], **overrides}
        plugins = Plugins.load(data["plugins"])
        return validate(data, plugins), plugins

    return make
