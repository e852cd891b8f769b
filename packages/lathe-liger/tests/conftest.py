from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lathe.testing.models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")
