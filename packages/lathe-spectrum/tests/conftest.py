import pytest


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """spectrum_snr_dir defaults to ./model_snr_results: keep every test's cache in its tmp dir."""
    monkeypatch.chdir(tmp_path)
