"""Test-wide set-up: no display, and never the user's own data directory or settings."""

import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Collections are keyed by folder path, so one store for the whole session is enough; it must
# be set before anything reads it (CLI subprocesses inherit it).
os.environ["EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="explorer-test-data-")
# ONNX graphs are exported once per test session (~10 s each), never into the user's cache.
os.environ["EXPLORER_CACHE_DIR"] = os.path.join(os.environ["EXPLORER_DATA_DIR"], "cache")
# The app keeps numba's compiled UMAP code in its cache dir, which the line above makes a scratch
# one: the tests use the user's real one (machine code only, no user data), or every test session
# would compile UMAP again (about a minute on 2 cores).
import platformdirs  # noqa: E402

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(platformdirs.user_cache_dir("Explorer", False), "numba"))
os.environ["EXPLORER_LOG_DIR"] = os.path.join(os.environ["EXPLORER_DATA_DIR"], "logs")
os.environ["XDG_CONFIG_HOME"] = os.path.join(os.environ["EXPLORER_DATA_DIR"], "config")

import pytest

from helpers import copy_sample  # noqa: F401 (also importable from here)


@pytest.fixture(scope="session")
def lite0():
    """The default model, built once per session (building it costs seconds)."""
    from explorer.core.backbones import load_model

    return load_model("efficientnet-lite0")


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """A small folder of real photographs: 4 labels x 7 variants."""
    return copy_sample(tmp_path / "photos", ["cat", "coffee", "rocket", "astronaut"])


@pytest.fixture
def restored_logging(monkeypatch):
    """For tests that set up the app's log: the package logger and sys.excepthook are restored
    after. Yields what the exception hook before the log's gets."""
    package = logging.getLogger("explorer")
    handlers, level = list(package.handlers), package.level
    earlier = []  # what the hook before ours got (pytest-qt's own would fail the test)
    monkeypatch.setattr(sys, "excepthook", lambda *info: earlier.append(info))
    yield earlier
    for handler in package.handlers[len(handlers):]:
        handler.close()
    package.handlers[:] = handlers
    package.setLevel(level)
