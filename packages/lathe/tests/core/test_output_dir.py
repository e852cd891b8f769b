from __future__ import annotations

from pathlib import Path

import pytest

from lathe.config import save_resolved, validate
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.train.output_dir import check_output_dir


def _cfg(out: Path, **kw):  # type: ignore[no-untyped-def]
    return validate({"base_model": "m", "datasets": [{"path": "d", "type": "alpaca"}], "output_dir": str(out), **kw}, Plugins())


def test_not_writable_names_output_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LatheError, match=r"output_dir .*file/out is not writable"):
        check_output_dir(_cfg(tmp_path / "file" / "out"))


def test_different_run_refused_unless_resuming_or_overwriting(tmp_path: Path) -> None:
    out = tmp_path / "out"
    save_resolved(_cfg(out), out)
    check_output_dir(_cfg(out))  # the same run again is fine
    check_output_dir(_cfg(out, max_steps=50))  # continuing with more steps is fine
    with pytest.raises(LatheError, match=r"different run .*differs in: learning_rate.*overwrite_output_dir"):
        check_output_dir(_cfg(out, learning_rate=1e-3))
    check_output_dir(_cfg(out, learning_rate=1e-3, overwrite_output_dir=True))
    check_output_dir(_cfg(out, learning_rate=1e-3, auto_resume_from_checkpoints=True))
