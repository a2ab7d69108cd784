"""Test-wide set-up: no display, and never the user's own data directory or settings."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own collection store; nothing touches the user's data directory."""
    data = tmp_path_factory.mktemp("explorer-data")
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(data / "config"))
    return data
